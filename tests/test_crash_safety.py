"""SIGKILL under a steady write load loses no acknowledged write and corrupts nothing."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from live import cli, start_server
from reliability import Client, audit_history, integrity, record

#: SIGKILL of a server over SQLite; tests/test_multi_instance.py does it over PostgreSQL.
pytestmark = pytest.mark.sqlite_only

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "crash-test-secret-" + "k" * 32}
CRASHES = 4
#: How long the load runs before each SIGKILL (long enough for a few hundred commits).
LOAD_SECONDS = 0.8

# Each writer owns one field and writes an ever-growing counter into it, so "at least as new as
# the last acknowledged write" is a comparison of integers read back from the database.
WRITERS: list[tuple[str, str, Callable[[str, int], tuple[str, dict]], Callable[[dict], int]]] = [
    (
        "name",
        "key",
        lambda org, n: ("/v1/organization", {"name": f"Crash Org {n}"}),
        lambda row: int(row["name"].rsplit(" ", 1)[1]),
    ),
    (
        "auto_replies.stop_text",
        "key",
        lambda org, n: ("/v1/organization", {"auto_replies": {"stop_text": f"stop {n}"}}),
        lambda row: int(json.loads(row["auto_replies"])["stop_text"].rsplit(" ", 1)[1]),
    ),
    (
        "missed_call_message",
        "token",
        lambda org, n: (
            f"/api/organizations/{org}/missed-call-message",
            {"missedCallMessage": f"missed {n}"},
        ),
        lambda row: int(row["missed_call_message"].rsplit(" ", 1)[1]),
    ),
]


def test_sigkill_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """Four SIGKILLs mid-load: integrity ok, every 200 present, audit trail == version history."""
    db = tmp_path / "crash.db"
    cli(db, "init", env=SECRET_ENV)
    org = cli(db, "org", "create", "--name", "Crash Org 0", env=SECRET_ENV)["id"]
    scopes = ("--scope", "org:read", "--scope", "org:admin:write")
    creds = {
        "key": cli(db, "key", "create", "--org", org, *scopes, env=SECRET_ENV)["key"],
        "token": cli(
            db, "token", "create", "--org", org, "--role", "ADMIN", "--sub", "u", env=SECRET_ENV
        )["token"],
    }
    counters = itertools.count(1)
    acked = {field: 0 for field, *_ in WRITERS}  # last counter answered 200, per field
    acked_ids: set[str] = set()
    sent = 0
    bad: list[tuple[str, int]] = []  # any answer other than 200 (none is expected)
    lock = threading.Lock()
    for crash in range(CRASHES):
        server = start_server(db, workers=1, env=SECRET_ENV, log_path=tmp_path / f"s{crash}.log")
        stop = threading.Event()

        def writer(
            spec: tuple, stop: threading.Event, base: str = server.base_url, round_: int = crash
        ) -> None:
            nonlocal sent
            field, cred, request_for, _ = spec
            client = Client(base, creds[cred], timeout=5)
            while not stop.is_set():
                with lock:
                    n = next(counters)
                    sent += 1
                path, body = request_for(org, n)
                request_id = f"r{round_}-{n}"
                method = "PATCH" if path.startswith("/v1") else "PUT"
                try:
                    status, _, _, _ = client.request(
                        method, path, body, {"X-Request-Id": request_id}
                    )
                except (OSError, http.client.HTTPException):
                    return  # the server is gone (maybe mid-response: BadStatusLine, IncompleteRead)
                if status != 200:
                    bad.append((request_id, status))
                    continue
                with lock:
                    acked[field] = max(acked[field], n)
                    acked_ids.add(request_id)

        threads = [threading.Thread(target=writer, args=(spec, stop)) for spec in WRITERS]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        server.crash()
        stop.set()
        for thread in threads:
            thread.join(10)
        assert bad == []
        _check(db, org, acked, acked_ids)

    # The survivor serves what the last acknowledged writes left.
    server = start_server(db, workers=1, env=SECRET_ENV, log_path=tmp_path / "final.log")
    try:
        status, _, body, _ = Client(server.base_url, creds["key"]).request(
            "GET", "/v1/organization"
        )
        assert status == 200
        assert int(body["data"]["name"].rsplit(" ", 1)[1]) >= acked["name"]
    finally:
        server.stop()
    record(
        "crash_safety",
        requests_sent=sent,
        acknowledged=len(acked_ids),
        concurrent_clients=len(WRITERS),
        crashes_survived=CRASHES,
        writes_lost=0,
    )


def _check(db: Path, org_id: str, acked: dict[str, int], acked_ids: set[str]) -> None:
    assert integrity(db) == "ok"
    row, events = audit_history(db, org_id)
    for field, _, _, read in WRITERS:
        assert read(row) >= acked[field], f"{field}: acknowledged write lost"
    org_events = [e for e in events if e["type"].startswith("organization.")]
    assert [e["type"] for e in org_events[:1]] == ["organization.created"]
    updates = [e for e in org_events if e["type"] == "organization.updated"]
    assert row["version"] - 1 == len(updates)
    recorded = {e["request_id"] for e in updates}
    assert acked_ids <= recorded, f"{len(acked_ids - recorded)} acknowledged writes have no event"
