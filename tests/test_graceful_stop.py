"""SIGTERM lets in-flight requests finish, exits 0 and leaves a sound database behind."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

import pytest

from handlers.cli.served import ORPHAN_GRACE_SECONDS, PARENT_CHECK_SECONDS
from live import alive, cli, start_server
from reliability import Client, audit_history, integrity, record

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "graceful-test-secret-" + "g" * 32}
#: One field per client thread, so each client's last acknowledged value can be checked.
FIELDS = ("name", "billing_email", "stop_text", "help_text")
CLIENTS = len(FIELDS)


def body_for(index: int, n: int) -> dict:
    """Client ``index``'s n-th PATCH body."""
    field = FIELDS[index]
    if field == "name":
        return {"name": f"Graceful {n}"}
    if field == "billing_email":
        return {"billing_email": f"b{n}@example.com"}
    return {"auto_replies": {field: f"{field} {n}"}}


def read_back(row: dict, index: int) -> str:
    """The stored value of client ``index``'s field in a raw organizations row."""
    field = FIELDS[index]
    return row[field] if field in row else json.loads(row["auto_replies"])[field]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_in_flight_requests(tmp_path: Path, workers: int) -> None:
    """Every request sent before SIGTERM is answered 200; exit 0; every 200 is in the file."""
    db = tmp_path / "graceful.db"
    cli(db, "init", env=SECRET_ENV)
    org = cli(db, "org", "create", "--name", "Graceful Org", env=SECRET_ENV)["id"]
    key = cli(db, "key", "create", "--org", org, "--scope", "org:admin:write", env=SECRET_ENV)
    server = start_server(db, workers=workers, env=SECRET_ENV)
    signalled = threading.Event()
    signal_at = [float("inf")]
    answered: dict[int, list[tuple[float, int, int]]] = {c: [] for c in range(CLIENTS)}
    unanswered: list[tuple[int, float, str]] = []  # (client, sent_at, error)

    def run(index: int) -> None:
        client = Client(server.base_url, key["key"], timeout=15)
        for n in range(1, 100_000):
            sent_at = time.monotonic()
            body = body_for(index, n)
            try:
                status, _, _, _ = client.request("PATCH", "/v1/organization", body)
            except (OSError, http.client.HTTPException) as exc:
                unanswered.append((index, sent_at, repr(exc)))
                return
            answered[index].append((sent_at, status, n))
            if signalled.is_set() and time.monotonic() - signal_at[0] > 1:
                return

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(0.7)
    signal_at[0] = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    signalled.set()
    exit_code = server.process.wait(20)
    for thread in threads:
        thread.join(20)

    requests = sum(len(a) for a in answered.values()) + len(unanswered)
    record(f"graceful_stop_w{workers}", requests_sent=requests, concurrent_clients=CLIENTS)
    # A request on the wire before the signal gets a complete answer, and it is a 200.
    cut_off = [u for u in unanswered if u[1] < signal_at[0]]
    assert cut_off == []
    assert all(status == 200 for a in answered.values() for _, status, _ in a)
    assert exit_code == 0
    assert integrity(db) == "ok"
    row, events = audit_history(db, org)
    for index in range(CLIENTS):
        last = max(n for _, _, n in answered[index])
        expected = next(iter(body_for(index, last).values()))
        expected = next(iter(expected.values())) if isinstance(expected, dict) else expected
        assert read_back(row, index) == expected
    assert row["version"] - 1 == sum(e["type"] == "organization.updated" for e in events)


def serving(db: Path) -> list[int]:
    """The live processes whose command line names ``db`` (an ``orgsettings serve`` of it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(db).encode() in argv and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_workers_stop_when_serve_is_killed(tmp_path: Path) -> None:
    """SIGKILL of ``serve`` (the OOM killer, a supervisor) leaves no worker serving its port
    alone: each worker notices its parent is gone and stops, gracefully or, past its grace
    period, by SIGKILL, removing the directory serve made for them. The deadline is that bound
    plus slack for a busy machine, not the second or so an idle one takes."""
    db = tmp_path / "orphan.db"
    cli(db, "init", env=SECRET_ENV)
    server = start_server(db, workers=2, env={**SECRET_ENV, "TMPDIR": str(tmp_path)})
    assert len(list(tmp_path.glob("orgsettings-serve-*"))) == 1  # what serve shares with them
    workers = server.workers()
    assert len(workers) == 2
    assert set(workers) <= set(serving(db))  # the check below sees a running instance
    server.process.kill()
    server.process.wait(10)
    deadline = time.monotonic() + PARENT_CHECK_SECONDS + ORPHAN_GRACE_SECONDS + 10
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its killed serve process"
        time.sleep(0.05)
    # No process of this instance is left to serve its port (whatever else on the machine
    # may bind the freed port next): none runs with this instance's database on its command line.
    assert serving(db) == []
    # And the directory serve made for its workers, which it could not remove, is gone too.
    assert list(tmp_path.glob("orgsettings-serve-*")) == []
