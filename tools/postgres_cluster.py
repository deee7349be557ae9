"""Run a command against a throwaway PostgreSQL cluster (stdlib only).

Usage:
    python tools/postgres_cluster.py ensure
        Find PostgreSQL's server binaries (installing Debian's ``postgresql`` package with
        apt-get when running as root and none are found) and print their directory.
    python tools/postgres_cluster.py run [--set NAME=VALUE]... -- CMD [ARGS...]
        Create a cluster in a temporary directory, start it on a free port of 127.0.0.1,
        run CMD with ORGSETTINGS_TEST_POSTGRES=postgresql://orgsettings@127.0.0.1:PORT/postgres,
        then stop the cluster, remove the directory and exit with CMD's exit code. ``--set``
        gives the server a setting of its own or overrides one of SERVER_OPTIONS (the bench
        sizes shared_buffers this way).

PostgreSQL refuses to run as root: as root the cluster belongs to the ``postgres`` user (or
``nobody``), while CMD still runs as the current user. Progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

MIN_VERSION = 13
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "orgsettings"
ENV_VAR = "ORGSETTINGS_TEST_POSTGRES"
START_RETRIES = 3
CREATECLUSTER_DROPIN = "/etc/postgresql-common/createcluster.d/orgsettings.conf"
INITDB_OPTIONS = ("-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
    "shared_buffers": "128MB",
}


class ClusterError(Exception):
    """A step failed; the message is the one line to print before exiting with status 2."""


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"postgres_cluster: {message}", file=sys.stderr, flush=True)


def server_version(bindir: str) -> int | None:
    """Return the major version of the ``postgres`` binary in ``bindir``, or None."""
    try:
        out = subprocess.run(
            [os.path.join(bindir, "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _usable(bindir: str) -> int | None:
    """Return the major version if ``bindir`` holds all server binaries, recent enough."""
    if not all(os.access(os.path.join(bindir, name), os.X_OK) for name in SERVER_BINARIES):
        return None
    version = server_version(bindir)
    return version if version is not None and version >= MIN_VERSION else None


def _candidates() -> list[str]:
    """Directories that may hold server binaries, best first."""
    found: list[tuple[int, str]] = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        name = os.path.basename(os.path.dirname(path))
        if name.isdigit():
            found.append((int(name), path))
    dirs = [path for _, path in sorted(found, reverse=True)]
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            )
            dirs.append(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:
        dirs.append(os.path.dirname(os.path.realpath(initdb)))
    return dirs


def find_bindir() -> tuple[str, int] | None:
    """Return (bin directory, major version) of the best usable PostgreSQL, or None."""
    for bindir in _candidates():
        version = _usable(bindir)
        if version is not None:
            return bindir, version
    return None


def _run_quiet(cmd: Sequence[str], what: str, **kwargs: Any) -> None:
    """Run ``cmd`` capturing its output; on failure raise ClusterError after showing it."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise ClusterError(f"{what} failed (exit {result.returncode}): {shlex.join(cmd)}")


def install_postgresql(sudo: list[str]) -> None:
    """Install Debian's ``postgresql`` package without its default "main" cluster (as root, or
    through ``sudo``)."""
    dropin = "# written by orgsettings tools/postgres_cluster.py\ncreate_main_cluster = false\n"
    _run_quiet(
        [*sudo, "mkdir", "-p", os.path.dirname(CREATECLUSTER_DROPIN)], "making the drop-in dir"
    )
    _run_quiet([*sudo, "tee", CREATECLUSTER_DROPIN], "writing the drop-in", input=dropin)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for the dpkg lock rather than fail (a fresh VM may be running apt-daily).
    apt_get = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q"]
    apt_get += ["-o", "DPkg::Lock::Timeout=300"]
    log("installing Debian's postgresql package with apt-get (no main cluster)")
    _run_quiet([*apt_get, "update"], "apt-get update", env=env)
    _run_quiet(
        [*apt_get, "install", "-y", "--no-install-recommends", "postgresql"],
        "apt-get install postgresql",
        env=env,
    )


def ensure_bindir() -> str:
    """Find the server binaries, installing them with apt-get as root if missing."""
    found = find_bindir()
    if found is None and shutil.which("apt-get"):
        if os.geteuid() == 0:
            install_postgresql([])
        elif shutil.which("sudo"):
            install_postgresql(["sudo", "-n"])  # a CI user with password-less sudo
        found = find_bindir()
    if found is None:
        raise ClusterError(
            f"no PostgreSQL >= {MIN_VERSION} server binaries (initdb, pg_ctl, postgres) found "
            "under /usr/lib/postgresql/*/bin, pg_config --bindir or PATH; install PostgreSQL"
        )
    bindir, version = found
    log(f"PostgreSQL {version} from {bindir}")
    return bindir


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A temporary cluster; as root, owned and run by an unprivileged user."""

    def __init__(self, bindir: str) -> None:
        """Prepare (but do not create) a cluster using the binaries in ``bindir``."""
        self.bindir = bindir
        self.tmp: str | None = None
        self.port: int | None = None
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.owner = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.owner is None:
                raise ClusterError("running as root but neither user postgres nor nobody exists")

    @property
    def data(self) -> str:
        """The data directory."""
        assert self.tmp is not None
        return os.path.join(self.tmp, "data")

    def _as_owner(self) -> dict[str, Any]:
        """subprocess keyword arguments that run a command as the cluster's owner."""
        kwargs: dict[str, Any] = {"cwd": self.tmp}
        if self.owner is not None:
            kwargs.update(user=self.owner.pw_uid, group=self.owner.pw_gid, extra_groups=[])
        return kwargs

    def _pg(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def create(self) -> None:
        """Make the temporary directory and run initdb in it."""
        self.tmp = tempfile.mkdtemp(prefix="orgsettings-pg-")
        if self.owner is not None:
            os.chown(self.tmp, self.owner.pw_uid, self.owner.pw_gid)
            who = f"as user {self.owner.pw_name}"
        else:
            who = "as the current user"
        began = time.monotonic()
        _run_quiet(
            [self._pg("initdb"), "-D", self.data, "-U", SUPERUSER, *INITDB_OPTIONS],
            "initdb",
            **self._as_owner(),
        )
        log(f"initdb in {self.tmp} {who}: {time.monotonic() - began:.2f}s")

    def start(self, extra: dict[str, str] | None = None) -> None:
        """Start the server on a free port, retrying when the port was taken meanwhile;
        ``extra`` settings override SERVER_OPTIONS."""
        assert self.tmp is not None
        logfile = os.path.join(self.tmp, "log")
        began = time.monotonic()
        for attempt in range(1 + START_RETRIES):
            port = free_port()
            settings = {
                "listen_addresses": "127.0.0.1",
                "port": str(port),
                "unix_socket_directories": self.tmp,
                **SERVER_OPTIONS,
                **(extra or {}),
            }
            options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in settings.items())
            pg_ctl = [self._pg("pg_ctl"), "-D", self.data, "-w", "-t", "60", "-l", logfile]
            result = subprocess.run(
                [*pg_ctl, "start", "-o", options],
                capture_output=True,
                text=True,
                check=False,
                **self._as_owner(),
            )
            if result.returncode == 0:
                self.port = port
                log(f"server started on 127.0.0.1:{port} in {time.monotonic() - began:.2f}s")
                return
            log(f"start on port {port} failed (attempt {attempt + 1})")
            self.stop(quiet=True)
        try:
            with open(logfile, encoding="utf-8", errors="replace") as f:
                tail = f.readlines()[-20:]
        except OSError:
            tail = []
        sys.stderr.write("".join(tail) + result.stdout + result.stderr)
        raise ClusterError("could not start the server (the end of its log is above)")

    def stop(self, quiet: bool = False) -> None:
        """Stop the server (immediate mode) if it is running."""
        if self.tmp is None or not os.path.exists(os.path.join(self.data, "postmaster.pid")):
            return
        began = time.monotonic()
        result = subprocess.run(
            [self._pg("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            text=True,
            check=False,
            **self._as_owner(),
        )
        if not quiet:
            if result.returncode == 0:
                log(f"server stopped in {time.monotonic() - began:.2f}s")
            else:
                log("stopping the server failed")
                sys.stderr.write(result.stdout + result.stderr)

    def remove(self) -> None:
        """Stop the server and delete the temporary directory."""
        if self.tmp is None:
            return
        # Before a successful start, the only postmaster.pid can be initdb's own
        # single-user backend (left when initdb was interrupted): pg_ctl won't stop it.
        self.stop(quiet=self.port is None)
        for delay in (0.0, 0.5, 2.0):  # an orphaned backend may still be writing files
            time.sleep(delay)
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not os.path.exists(self.tmp):
                log(f"removed {self.tmp}")
                break
        else:
            log(f"could not remove {self.tmp} entirely")
        self.tmp = None

    @property
    def url(self) -> str:
        """Connection URL of the superuser to the ``postgres`` database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"


def run(command: Sequence[str], settings: dict[str, str] | None = None) -> int:
    """Run ``command`` against a fresh cluster started with ``settings`` over SERVER_OPTIONS;
    return its exit code (128+N if signal N)."""
    child: subprocess.Popen[bytes] | None = None
    cleaning = False
    forwarded = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal forwarded
        if cleaning:
            return
        if child is None:
            raise SystemExit(128 + signum)  # still setting up: unwind through `finally`
        if child.poll() is None:
            # The child exits and cleanup follows in `finally`; a child that outlives
            # the first forwarded signal is killed at the next one.
            forwarded += 1
            if forwarded == 1:
                child.send_signal(signum)
            else:
                child.kill()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    cluster: Cluster | None = None
    try:
        cluster = Cluster(ensure_bindir())
        cluster.create()
        cluster.start(settings)
        log(f"running {shlex.join(command)}")
        try:
            child = subprocess.Popen(command, env={**os.environ, ENV_VAR: cluster.url})
        except OSError as exc:
            raise ClusterError(f"cannot run {command[0]}: {exc}") from exc
        code = child.wait()
        return 128 - code if code < 0 else code
    finally:
        cleaning = True
        if cluster is not None:
            cluster.remove()


USAGE = (
    "usage: postgres_cluster.py ensure"
    " | postgres_cluster.py run [--set NAME=VALUE]... -- CMD [ARGS...]"
)


def parse_run(argv: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """``run``'s arguments: the ``--set`` settings and the command; None when malformed."""
    settings: dict[str, str] = {}
    rest = list(argv)
    while len(rest) >= 2 and rest[0] == "--set":
        name, equals, value = rest[1].partition("=")
        if not equals or not re.fullmatch(r"[a-z_]+", name):
            return None
        settings[name] = value
        rest = rest[2:]
    if len(rest) >= 2 and rest[0] == "--":
        return settings, rest[1:]
    return None


def main(argv: Sequence[str]) -> int:
    """Command-line entry point; returns the exit status."""
    try:
        if list(argv) == ["ensure"]:
            print(ensure_bindir())
            return 0
        parsed = parse_run(argv[1:]) if argv and argv[0] == "run" else None
        if parsed is not None:
            settings, command = parsed
            return run(command, settings)
    except ClusterError as exc:
        log(str(exc))
        return 2
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
