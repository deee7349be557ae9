"""Helpers for the reliability suites: one-connection HTTP clients, raw sockets, the figures file.

Each suite adds its figures to ``var/reliability.json`` (git-ignored) with ``record``; running
this module (``make reliability``) prints them, to refresh README's "Reliability" section.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "var" / "reliability.json"


class Client:
    """One keep-alive HTTP connection, for one client thread; times every request."""

    def __init__(self, base_url: str, token: str, timeout: float = 10) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.token = token
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any, float]:
        """Send one request; returns status, lower-cased headers, decoded JSON body, seconds."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            raw = response.read()
        except Exception:
            self.close()
            raise
        elapsed = time.perf_counter() - started
        if response.getheader("connection", "").lower() == "close":
            self.close()
        answer = {k.lower(): v for k, v in response.getheaders()}
        return response.status, answer, json.loads(raw) if raw else None, elapsed

    def close(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def port_of(base_url: str) -> int:
    """The port of a ``http://127.0.0.1:PORT`` base URL."""
    return int(base_url.rsplit(":", 1)[1])


def raw_exchange(port: int, data: bytes, *, timeout: float = 15, half_close: bool = False) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes or ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, lower-cased headers and JSON body (or the raw text) of one raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        decoded = body.decode("latin-1")
    return status, headers, decoded


def audit_history(db: Path, org_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The organization row and its audit events (oldest first), read straight from the file."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        org = dict(conn.execute("SELECT * FROM organizations WHERE id = ?", [org_id]).fetchone())
        events = [
            dict(row)
            for row in conn.execute(
                "SELECT * FROM audit_events WHERE organization_id = ? ORDER BY seq", [org_id]
            )
        ]
    finally:
        conn.close()
    return org, events


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of the database file."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def record(section: str, **figures: Any) -> None:
    """Store one suite's figures of this run in var/reliability.json.

    pytest runs test files in two processes (pytest-xdist), so each update holds a lock on
    the figures' lock file and replaces the file whole: no section is lost, none half-read.
    """
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with open(FIGURES.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(FIGURES.read_text())
        except (OSError, ValueError):
            data = {}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data[section] = {**figures, "recorded_at": stamp}
        new = FIGURES.with_suffix(f".{os.getpid()}.tmp")
        new.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(new, FIGURES)


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The README figures, summed over the suites of the last run."""
    sections = data.values()
    return {
        "requests sent": sum(s.get("requests_sent", 0) for s in sections),
        "concurrent clients": data.get("concurrency", {}).get("concurrent_clients", 0),
        "racers on one If-Match": data.get("if_match_race", {}).get("concurrent_clients", 0),
        "crashes survived": sum(s.get("crashes_survived", 0) for s in sections),
        "hostile inputs tried": sum(s.get("hostile_inputs", 0) for s in sections),
        "writes lost": sum(s.get("writes_lost", 0) for s in sections),
        "slowest response (s)": max((s.get("max_latency_s", 0) for s in sections), default=0),
    }


def main() -> int:
    """Print the figures of the last run (``make reliability``)."""
    if not FIGURES.exists():
        print(f"{FIGURES} not found: run `make unit` (or pytest tests/test_*.py) first")
        return 1
    data = json.loads(FIGURES.read_text())
    for name, value in summary(data).items():
        print(f"| {name} | {value} |")
    print()
    print(json.dumps(data, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
