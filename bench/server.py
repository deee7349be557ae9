"""Starting a server under test on a free loopback port, waiting until it answers, stopping it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from wrk import pin


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(
    url: str, headers: dict[str, str] | None = None, timeout: float = 1.0
) -> int | None:
    """The status of GET ``url``, or None when nothing answers."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


class Server:
    """One server process, pinned to ``cpu``, its output going to ``log_path``."""

    def __init__(
        self,
        cmd: list[str],
        *,
        port: int,
        ready_path: str,
        ready_headers: dict[str, str] | None = None,
        env: dict[str, str],
        log_path: Path,
        cpu: int | None,
        cwd: Path,
    ) -> None:
        self.cmd = [*pin(cpu), *cmd]
        self.port = port
        self.ready_path = ready_path
        self.ready_headers = ready_headers or {}
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def base(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> float:
        """Start the process and poll ``ready_path`` until it answers 200; return seconds taken.

        The server's stdout/stderr (orgsettings' JSON request log) go to a file, as in
        production, never to an unread pipe that would block it.
        """
        log = self.log_path.open("wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        url = self.base + self.ready_path
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd} exited {self.proc.returncode}: {self.tail()}")
            if http_status(url, self.ready_headers, timeout=0.5) == 200:
                self.startup_s = time.monotonic() - started
                return self.startup_s
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{url} not ready within {timeout}s: {self.tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait, and SIGKILL only if it does not exit in ``timeout`` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 20) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
