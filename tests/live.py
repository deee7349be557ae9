"""Run a real ``orgsettings serve`` process on a free loopback port, for live tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage import is_postgresql_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ORGSETTINGS = str(BIN / "orgsettings")


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` (dropping one of that name first) in the PostgreSQL server at
    ``server_url``; the new database's URL."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = {**conninfo_to_dict(server_url), "dbname": name}
    return "postgresql://{user}@{host}:{port}/{dbname}".format(**params)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(db: str | Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run an ``orgsettings`` command with --json against ``db`` and return its object."""
    out = subprocess.run(
        [ORGSETTINGS, "--db", str(db), *args, "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    return json.loads(out.stdout)


ALL_SCOPES = (
    "org:read",
    "org:admin:write",
    "audit:read",
    "opt_outs:read",
    "opt_outs:write",
    "messaging",
)


def full_key(db: str | Path, org_id: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``key create`` for ``org_id`` with every scope; returns the CLI's object (key included)."""
    scopes = [arg for scope in ALL_SCOPES for arg in ("--scope", scope)]
    return cli(db, "key", "create", "--org", org_id, *scopes, env=env)


@dataclass
class Server:
    """A running server process and where to reach it."""

    process: subprocess.Popen
    base_url: str
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Stop the process (SIGTERM by default) and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def workers(self) -> list[int]:
        """The pids of every live process below the server (Granian's workers), from /proc."""
        return descendants(self.process.pid)

    def crash(self) -> None:
        """SIGKILL the server and all its workers at once, as a crash of its machine would.

        ``stop(SIGKILL)`` kills the Granian main process only; its workers notice and stop
        gracefully (handlers/cli/served.py), which is not a crash."""
        for pid in self.workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait(10)

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_once(self, ready: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The log as soon as ``ready(log)`` holds (polled), or as it is after ``timeout``.
        A request's access-log line is written after its response, in the same loop turn."""
        deadline = time.monotonic() + timeout
        while not ready(text := self.log()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return text


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first, then the parent), or
    None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has stopped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        fields = _stat(entry) if entry.isdigit() else None
        if fields is not None and fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _server_sockets(server_port: int, client_port: int) -> set[str]:
    """The inodes of the server-side sockets of the loopback connection from ``client_port``
    to ``server_port``, read from /proc/net/tcp (both ports in hex after the address)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            ports = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
            if ports == (server_port, client_port) and inode != "0":
                inodes.add(f"socket:[{inode}]")
    return inodes


def worker_of(connection: socket.socket, pids: list[int]) -> int | None:
    """Which of the worker processes ``pids`` holds the server's end of ``connection`` (a
    connected client socket whose request was answered, so the connection was accepted), by
    the socket's inode among each worker's open files; None when none does."""
    server_port = connection.getpeername()[1]
    inodes = _server_sockets(server_port, connection.getsockname()[1])
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


def wait_ready(base_url: str, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """Poll /readyz until it answers 200 (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} was not ready within {timeout} s")


def start_server(
    db: str | Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """Start ``orgsettings serve`` against ``db`` (a file or a URL) on a free port and wait
    until it is ready. The log goes beside an SQLite file unless ``log_path`` is given (it
    must be, for a PostgreSQL URL).

    pytest runs two processes, so another test may take the free port before the server
    binds it; ``serve`` then exits at once saying the port is in use, and a new port is tried.
    """
    if log_path is None and is_postgresql_url(str(db)):
        raise ValueError("give log_path for a PostgreSQL database")
    for _attempt in range(4):
        try:
            return _start_server_on(free_port(), db, workers, env, log_path, preexec_fn)
        except PortTaken:
            continue
    raise RuntimeError("four free ports in a row were taken before the server could bind one")


class PortTaken(RuntimeError):
    """``serve`` exited because its port was taken between ``free_port`` and its bind."""


def _start_server_on(
    port: int,
    db: str | Path,
    workers: int,
    env: dict[str, str] | None,
    log_path: Path | None,
    preexec_fn: Callable[[], None] | None,
) -> Server:
    if log_path is None:
        log_path = Path(db).parent / f"server-{port}.log"
    handle = log_path.open("wb")
    process = subprocess.Popen(
        [ORGSETTINGS, "--db", str(db), "serve", "--port", str(port), "--workers", str(workers)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        preexec_fn=preexec_fn,
    )
    handle.close()
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log_path=log_path)
    try:
        wait_ready(server.base_url, process)
    except Exception:
        server.stop(signal.SIGKILL)
        if process.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in server.log():
            raise PortTaken(port) from None
        raise
    return server
