"""Connection limits of ``orgsettings serve`` (README, "Connections"), against a live server.

The request head is bounded in size (64 KiB) and in time (the header timeout, 2 s here through
ORGSETTINGS_HEADER_TIMEOUT_SECONDS instead of the default 10 s), idle keep-alive connections
are closed after the same timeout, endless headers from 10 clients leave the server's memory
and /healthz alone, and the open-file soft limit is raised to the hard limit at start.
Everything talks to 127.0.0.1; every loop stops by itself.
"""

from __future__ import annotations

import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.cli import server_limits
from handlers.cli.main import main
from live import Server, cli, free_port, start_server
from reliability import record

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "connections-test-secret-" + "c" * 32}
HEADER_TIMEOUT = 2.0
#: The soft open-file limit the server is started with, below its hard limit when possible.
STARTED_SOFT = 256
HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
FIGURES: dict[str, Any] = {}


def _lower_soft_limit() -> None:
    """In the child before exec: a soft open-file limit below the hard one, as on many hosts."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(STARTED_SOFT, hard), hard))


def launch(db: Path, workers: int) -> Server:
    """``orgsettings serve`` over ``db`` with a 2 s header timeout and a low soft file limit."""
    env = {**SECRET_ENV, "ORGSETTINGS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    cli(db, "init", env=env)
    return start_server(db, workers=workers, env=env, preexec_fn=_lower_soft_limit)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with 2 workers: the limits hold in every worker process."""
    live = launch(tmp_path_factory.mktemp("connections") / "connections.db", workers=2)
    yield live
    assert live.stop() == 0, live.log()[-2000:]


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server as ``orgsettings serve`` starts by default: one worker."""
    live = launch(tmp_path_factory.mktemp("connections1") / "connections.db", workers=1)
    yield live
    assert live.stop() == 0, live.log()[-2000:]


def port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mb(pid: int) -> float:
    """VmRSS summed over the server's process tree, in MB."""
    total_kb = 0
    for member in descendants(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total_kb += sum(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
    return total_kb / 1024


def exchange(server: Server, data: bytes, chunk: int | None = None, timeout: float = 15) -> bytes:
    """Send ``data`` (in pieces of ``chunk`` bytes) on a new connection; read the response head.

    Returns b"" when the server closed or reset the connection without answering.
    """
    answer = b""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=timeout) as sock:
        try:
            step = chunk or len(data)
            for start in range(0, len(data), step):
                sock.sendall(data[start : start + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: whatever it answered is still readable
        try:
            while b"\r\n\r\n" not in answer and (piece := sock.recv(65536)):
                answer += piece
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def status(answer: bytes) -> int | None:
    """The status code of a response head, or None for a connection closed unanswered."""
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def healthz_seconds(server: Server) -> float:
    """Seconds GET /healthz takes on a fresh connection; raises when it is not a 200."""
    started = time.monotonic()
    answer = exchange(server, HEAD + b"Connection: close\r\n\r\n", timeout=5)
    assert status(answer) == 200, answer[:200]
    return time.monotonic() - started


def closed_after(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes ``sock`` (reading and discarding), None past ``limit``."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


def padded_head(total: int) -> bytes:
    """A complete GET /healthz head of exactly ``total`` bytes (one long header)."""
    bare = HEAD + b"X-Pad: \r\n\r\n"
    return HEAD + b"X-Pad: " + b"p" * (total - len(bare)) + b"\r\n\r\n"


def test_a_head_of_32_kib_is_served(server: Server) -> None:
    """The bound leaves room for every real client: 32 KiB of headers are read however sent."""
    for chunk in (None, 1000, 8192):
        assert status(exchange(server, padded_head(32 * 1024), chunk)) == 200


OVERSIZED = [
    *[(64 * 1024 + 1, chunk) for chunk in (None, 65536, 16384, 4096, 1000)],
    *[(100_000, chunk) for chunk in (None, 65536, 16384, 4096, 1000)],
    *[(16 * 1024 * 1024, chunk) for chunk in (None, 65536, 16384)],
]


@pytest.mark.parametrize(("total", "chunk"), OVERSIZED)
def test_a_head_over_64_kib_is_refused(server: Server, total: int, chunk: int | None) -> None:
    """Over 64 KiB, however it arrives: 431 or a closed connection, never an answer from the app."""
    answer = exchange(server, padded_head(total), chunk)
    assert status(answer) in (431, None), answer[:200]


def test_a_million_headers_are_refused(server: Server) -> None:
    """1,000,000 header lines (8 MB): refused at once, never answered 200."""
    started = time.monotonic()
    data = HEAD + b"X-A: b\r\n" * 1_000_000 + b"\r\n"
    answer = exchange(server, data)
    assert status(answer) in (431, None), answer[:200]
    assert time.monotonic() - started < 10


def test_a_head_not_complete_in_time_is_closed(server: Server) -> None:
    """A head sent a byte every 0.1 s is closed at the header timeout, unanswered or 408."""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=5) as sock:
        started = time.monotonic()
        trickle = HEAD + b"X-Slow: " + b"s" * 1000
        closed_at = None
        for byte in trickle:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - started
                break
            if closed_after(sock, 0.1) is not None:
                closed_at = time.monotonic() - started
                break
            if time.monotonic() - started > HEADER_TIMEOUT + 5:
                break
    FIGURES["slow_head_closed_after_s"] = round(closed_at or -1, 2)
    assert closed_at is not None, "a trickling head was never closed"
    assert HEADER_TIMEOUT - 0.5 <= closed_at <= HEADER_TIMEOUT + 2


def test_a_silent_connection_is_closed(server: Server) -> None:
    """A connection that never sends a byte is closed at the header timeout."""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=5) as sock:
        took = closed_after(sock, HEADER_TIMEOUT + 5)
    assert took is not None and took <= HEADER_TIMEOUT + 2


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    """After a complete exchange, a kept-alive connection left idle closes at the timeout."""
    with socket.create_connection(("127.0.0.1", port(server)), timeout=5) as sock:
        sock.sendall(HEAD + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert status(answer) == 200
        # Still open a moment later: it is kept alive, not closed after every response.
        sock.sendall(HEAD + b"\r\n")
        time.sleep(0.2)
        took = closed_after(sock, HEADER_TIMEOUT + 5)
    FIGURES["idle_keep_alive_closed_after_s"] = round(took or -1, 2)
    assert took is not None and HEADER_TIMEOUT - 1 <= took <= HEADER_TIMEOUT + 2


def test_endless_headers_from_10_clients(one_worker: Server) -> None:
    """10 clients pour header lines for 6 s: server RSS under 200 MB, /healthz under 1 s.

    RSS is summed over the server's processes (Granian's main process and its worker), as
    /proc shows it; each further worker adds about 66 MB at rest.
    """
    server = one_worker
    assert server.process.pid
    pid = server.process.pid
    before = rss_mb(pid)
    seconds, stop = 6.0, threading.Event()
    poured = [0] * 10
    burst = b"X-Flood: " + b"f" * 1000 + b"\r\n"
    burst *= 64

    def pour(index: int) -> None:
        # A connection the server closes is replaced: the pour goes on for the whole time.
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port(server)), timeout=5) as sock:
                    sock.sendall(HEAD)
                    while not stop.is_set():
                        sock.sendall(burst)
                        poured[index] += len(burst)
            except OSError:
                time.sleep(0.005)

    threads = [threading.Thread(target=pour, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    peak, worst = 0.0, 0.0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            peak = max(peak, rss_mb(pid))
            worst = max(worst, healthz_seconds(server))
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    FIGURES.update(flood_rss_before_mb=round(before, 1), flood_peak_rss_mb=round(peak, 1))
    FIGURES["flood_healthz_max_s"] = round(worst, 3)
    FIGURES["flood_mb_poured"] = round(sum(poured) / 1e6)
    assert sum(poured) > 50_000_000  # the attack did run: 50 MB of headers and more
    assert peak < 200
    assert worst < 1


def test_slow_heads_from_500_connections_do_not_block_healthz(server: Server) -> None:
    """500 connections trickling heads: /healthz answers in under 1 s; all closed at the timeout."""
    socks = [socket.create_connection(("127.0.0.1", port(server)), timeout=5) for _ in range(500)]
    started = time.monotonic()
    try:
        for sock in socks:
            sock.sendall(HEAD[:10])
        worst = max(healthz_seconds(server) for _ in range(5))
        open_after = len(socks)
        while open_after and time.monotonic() - started < HEADER_TIMEOUT + 5:
            time.sleep(0.25)
            open_after = 0
            for sock in socks:
                sock.settimeout(0)
                try:
                    open_after += sock.recv(1) != b""
                except BlockingIOError:
                    open_after += 1
                except OSError:
                    pass
        took = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    FIGURES.update(slow_500_healthz_max_s=round(worst, 3), slow_500_closed_after_s=round(took, 2))
    assert worst < 1
    assert open_after == 0
    assert took <= HEADER_TIMEOUT + 3


def open_files(pid: int) -> tuple[int, int]:
    """The soft and hard open-file limits of a process, from /proc/<pid>/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit")


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit(server: Server) -> None:
    """Started with a soft limit of 256: every server process runs with soft == hard."""
    members = descendants(server.process.pid)
    assert len(members) >= 3  # the main process and its 2 workers
    for pid in members:
        soft, hard = open_files(pid)
        assert soft == hard, (pid, soft, hard)
    FIGURES["open_files"] = open_files(server.process.pid)[0]


def test_connection_cap_follows_the_open_file_limit() -> None:
    """The per-worker cap: open files less the reserve, at least 1, at most 10,000."""
    assert server_limits.connection_cap(1024) == 1024 - server_limits.RESERVED_FILES
    assert server_limits.connection_cap(1_048_576) == 10_000
    assert server_limits.connection_cap(10) == 1


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon", "nan"])
def test_a_bad_header_timeout_is_refused_before_listening(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    """ORGSETTINGS_HEADER_TIMEOUT_SECONDS out of range: one line on stderr, exit 2."""
    monkeypatch.setenv("ORGSETTINGS_HEADER_TIMEOUT_SECONDS", value)
    assert main(["--db", str(tmp_path / "t.db"), "serve", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "ORGSETTINGS_HEADER_TIMEOUT_SECONDS" in err and len(err.strip().splitlines()) == 1


def test_record_connection_figures(server: Server) -> None:
    """Store the figures this module measured (runs last in the module)."""
    record("connections", **FIGURES)
    assert signal.SIGTERM  # the server fixture stops it with SIGTERM and checks exit 0
