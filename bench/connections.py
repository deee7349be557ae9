"""Connection limits of candidate ASGI servers, measured on loopback (README, "Connections").

    .venv/bin/python bench/connections.py [candidate ...] [--skip-wrk] [--json OUT]

For each candidate server running orgsettings' app it measures: one 16 MiB header, one request
with 1,000,000 headers, 10 clients pouring endless header lines (summed RSS of the server's
process tree, /healthz latency meanwhile), slowloris connections sending a byte at a time
(closed within the header timeout?), an idle keep-alive connection (when is it closed?), and
GET / PATCH throughput under wrk (server on CPU 0, wrk on CPU 1). Every loop is bounded in
time; everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from server import Server, free_port
from wrk import LUA_DIR, parse, pin

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
FLOOD_SECONDS = 15.0
SLOW_CONNECTIONS = 1000
SLOW_SECONDS = 25.0
IDLE_WAIT = 30.0


def candidates(port: int, var: Path) -> dict[str, list[str]]:
    """The command line of each candidate; every one serves the same app factory."""
    hyper_conf = var / "hypercorn.toml"
    hyper_conf.write_text(
        f'bind = ["{HOST}:{port}"]\nh11_max_incomplete_size = 65536\nkeep_alive_timeout = 5\n'
        'read_timeout = 10\nbacklog = 1024\nloglevel = "WARNING"\n'
    )
    uv = [str(BIN / "python"), "-m", "uvicorn", "handlers.cli.served:app", "--factory"]
    uv += ["--host", HOST, "--port", str(port), "--no-access-log", "--no-server-header"]
    uv += ["--log-level", "warning", "--timeout-keep-alive", "5"]
    return {
        "uvicorn-httptools": [*uv, "--http", "httptools"],
        "uvicorn-h11": [*uv, "--http", "h11", "--h11-max-incomplete-event-size", "65536"],
        "orgsettings-serve": [
            str(BIN / "orgsettings"),
            "--db",
            os.environ["ORGSETTINGS_DB"],
            "serve",
            "--port",
            str(port),
        ],
        "granian": [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--http",
            "1",
            "--no-ws",
            "--http1-buffer-size",
            "65536",
            "--http1-header-read-timeout",
            "10000",
            "--log-level",
            "warning",
            "handlers.cli.served:app",
        ],
        "hypercorn": [
            str(BIN / "hypercorn"),
            "--config",
            str(hyper_conf),
            "handlers.cli.served:app()",
        ],
    }


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def rss_mb(pid: int) -> float:
    """VmRSS summed over the process tree of ``pid``, in MB."""
    total = 0
    for member in tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def status_of(raw: bytes) -> str:
    """The status code of a raw HTTP response, or "closed" when nothing came back."""
    if not raw:
        return "closed"
    line = raw.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split()
    return parts[1] if len(parts) > 1 else line[:40]


def send_then_read(
    port: int, head: bytes, body_iter: Any, timeout: float = 30
) -> tuple[str, float]:
    """Send ``head`` then each chunk of ``body_iter``; return the server's status and seconds."""
    started = time.monotonic()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            for chunk in body_iter:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return status_of(b"".join(chunks)), time.monotonic() - started


def big_header(port: int) -> dict[str, Any]:
    """One 16 MiB header line."""
    value = b"a" * (1 << 20)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
    status, seconds = send_then_read(port, head, [*[value] * 16, b"\r\n\r\n"])
    return {"status": status, "seconds": round(seconds, 2)}


def many_headers(port: int) -> dict[str, Any]:
    """One request with 1,000,000 headers."""
    block = b"X-A: b\r\n" * 10_000
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    status, seconds = send_then_read(port, head, [*[block] * 100, b"\r\n"])
    return {"status": status, "seconds": round(seconds, 2)}


def healthz_seconds(port: int, timeout: float = 5) -> float | None:
    """Seconds for GET /healthz on a fresh connection, or None when it failed."""
    started = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return time.monotonic() - started if data.startswith(b"HTTP/1.1 200") else None
    except OSError:
        return None


def probe(pid: int, port: int, stop: threading.Event, out: dict[str, Any]) -> None:
    """Sample tree RSS and /healthz latency until ``stop``."""
    peak, worst, failed, probes = 0.0, 0.0, 0, 0
    while not stop.is_set():
        peak = max(peak, rss_mb(pid))
        took = healthz_seconds(port)
        probes += 1
        if took is None:
            failed += 1
        else:
            worst = max(worst, took)
        stop.wait(0.3)
    out.update(peak_rss_mb=round(peak, 1), healthz_max_s=round(worst, 3))
    out.update(healthz_failed=failed, healthz_probes=probes)


def flood(pid: int, port: int, clients: int = 10) -> dict[str, Any]:
    """``clients`` connections pour header lines for FLOOD_SECONDS; RSS and /healthz meanwhile."""
    before = rss_mb(pid)
    stop, out = threading.Event(), {}
    sent = [0] * clients
    reconnects = [0] * clients
    line = b"X-Flood: " + b"f" * 1000 + b"\r\n"
    burst = line * 64

    def pour(index: int) -> None:
        # A client whose connection is closed opens another: the pour never stops early.
        started = time.monotonic()
        while time.monotonic() - started < FLOOD_SECONDS:
            try:
                with socket.create_connection((HOST, port), timeout=5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    while time.monotonic() - started < FLOOD_SECONDS:
                        sock.sendall(burst)
                        sent[index] += len(burst)
            except OSError:
                reconnects[index] += 1
                time.sleep(0.01)

    watcher = threading.Thread(target=probe, args=(pid, port, stop, out))
    watcher.start()
    threads = [threading.Thread(target=pour, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(FLOOD_SECONDS + 10)
    stop.set()
    watcher.join()
    out.update(rss_before_mb=round(before, 1), mb_sent_per_client=round(max(sent) / 1e6, 1))
    out["closed_by_server"] = sum(reconnects)
    return out


def slowloris(pid: int, port: int, count: int = SLOW_CONNECTIONS) -> dict[str, Any]:
    """``count`` connections send a header a byte every second; when does the server close them?"""
    stop, out = threading.Event(), {}
    watcher = threading.Thread(target=probe, args=(pid, port, stop, out))
    socks: list[socket.socket] = []
    opened = time.monotonic()
    for _ in range(count):
        try:
            sock = socket.create_connection((HOST, port), timeout=5)
        except OSError:
            break
        sock.setblocking(False)
        socks.append(sock)
    watcher.start()
    payload = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10_000
    closed: dict[int, float] = {}
    step = 0
    while time.monotonic() - opened < SLOW_SECONDS and len(closed) < len(socks):
        for index, sock in enumerate(socks):
            if index in closed:
                continue
            try:
                sock.send(payload[step : step + 1])
                if sock.recv(4096) == b"":
                    closed[index] = time.monotonic() - opened
            except BlockingIOError:
                pass
            except OSError:
                closed[index] = time.monotonic() - opened
        step += 1
        time.sleep(1.0)
    # Normal requests while the slow connections are still open (if any are).
    ok = sum(1 for _ in range(20) if healthz_seconds(port, timeout=2) is not None)
    stop.set()
    watcher.join()
    for sock in socks:
        sock.close()
    times = sorted(closed.values())
    out.update(
        opened=len(socks),
        closed=len(closed),
        closed_within_12s=sum(1 for t in times if t <= 12),
        median_close_s=round(times[len(times) // 2], 1) if times else None,
        normal_ok_of_20=ok,
    )
    return out


def idle_keepalive(port: int) -> dict[str, Any]:
    """After one complete request, how long an idle keep-alive connection stays open."""
    with socket.create_connection((HOST, port), timeout=IDLE_WAIT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        started = time.monotonic()
        try:
            while sock.recv(65536):
                pass
            return {"closed_after_s": round(time.monotonic() - started, 1)}
        except TimeoutError:
            return {"closed_after_s": None}
        except ConnectionResetError:
            return {"closed_after_s": round(time.monotonic() - started, 1)}


def silent(port: int) -> dict[str, Any]:
    """A connection that never sends a byte: when is it closed?"""
    with socket.create_connection((HOST, port), timeout=IDLE_WAIT) as sock:
        started = time.monotonic()
        try:
            while sock.recv(65536):
                pass
            return {"closed_after_s": round(time.monotonic() - started, 1)}
        except TimeoutError:
            return {"closed_after_s": None}
        except ConnectionResetError:
            return {"closed_after_s": round(time.monotonic() - started, 1)}


def wrk(url: str, token: str, lua: str | None) -> dict[str, Any]:
    """5 s of wrk -t1 -c16 on CPU 1."""
    cmd = [*pin(1), "wrk", "-t1", "-c16", "-d5s", "--latency"]
    cmd += ["-H", f"Authorization: Bearer {token}"]
    if lua:
        cmd += ["-s", str(LUA_DIR / lua)]
    text = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=60).stdout
    result = parse(text)
    return {"rps": round(result.requests_per_s), "p99_ms": result.p99_ms, "errors": result.errors}


def cli(db: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "orgsettings"), "--db", db, *args, "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def measure(
    name: str, var: Path, token: str, skip_wrk: bool, wrk_only: bool = False
) -> dict[str, Any]:
    """Every measurement of one candidate, on fresh servers where an attack may have hurt it."""
    result: dict[str, Any] = {"server": name}
    steps = ["wrk", "big_header", "many_headers", "flood", "slowloris", "idle", "silent"]
    for step in steps:
        if (step == "wrk" and skip_wrk) or (step != "wrk" and wrk_only):
            continue
        port = free_port()
        cmd = candidates(port, var)[name]
        server = Server(
            cmd,
            port=port,
            ready_path="/readyz",
            env={},
            log_path=var / f"{name}-{step}.log",
            cpu=0,
            cwd=ROOT,
        )
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        try:
            if step == "wrk":
                base = f"http://{HOST}:{port}/v1/organization"
                wrk(base, token, None)  # warm-up
                result["get"] = wrk(base, token, None)
                result["patch"] = wrk(base, token, "patch.lua")
            elif step == "big_header":
                result[step] = big_header(port)
            elif step == "many_headers":
                result[step] = many_headers(port)
            elif step == "flood":
                result[step] = flood(pid, port)
            elif step == "slowloris":
                result[step] = slowloris(pid, port)
            elif step == "idle":
                result[step] = idle_keepalive(port)
            elif step == "silent":
                result[step] = silent(port)
        finally:
            alive = server.proc.poll() is None
            server.stop()
        if not alive:
            result[f"{step}_server_died"] = True
        print(name, step, json.dumps(result.get(step, result.get("get"))), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--wrk-only", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        db = str(var / "bench.db")
        os.environ["ORGSETTINGS_DB"] = db
        os.environ.setdefault("ORGSETTINGS_JWT_SECRET", "connections-bench-" + "x" * 32)
        os.environ["ORGSETTINGS_LOG_REQUESTS"] = "1"
        subprocess.run([str(BIN / "orgsettings"), "--db", db, "init"], check=True)
        org = cli(db, "org", "create", "--name", "Bench")
        scopes = ["--scope", "org:read", "--scope", "org:admin:write", "--scope", "audit:read"]
        scopes += ["--scope", "messaging"]  # the same key as bench/targets.py's KEY_SCOPES
        token = cli(db, "key", "create", "--org", org["id"], *scopes)["key"]
        names = args.names or list(candidates(0, var))
        results = [measure(n, var, token, args.skip_wrk, args.wrk_only) for n in names]
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
