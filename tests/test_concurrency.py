"""Concurrent writers through both surfaces, against a live server with two worker processes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from live import Server, cli, start_server
from reliability import Client, record

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "concurrency-test-secret-" + "c" * 32}
REQUESTS_PER_CLIENT = 100
MAX_SECONDS = 2.0

# Each client owns one field: (surface, request body for step i, how to read the field back).
V1: list[tuple[str, Callable[[int], dict], Callable[[dict], Any]]] = [
    ("name", lambda i: {"name": f"Concurrent Org #{i}"}, lambda o: o["name"]),
    (
        "billing_email",
        lambda i: {"billing_email": f"billing{i}@example.com"},
        lambda o: o["billing_email"],
    ),
    (
        "message_retention_days",
        lambda i: {"message_retention_days": 100 + i},
        lambda o: o["message_retention_days"],
    ),
    (
        "quiet_hours.start",
        lambda i: {"quiet_hours": {"start": f"{10 + i // 60:02d}:{i % 60:02d}"}},
        lambda o: o["quiet_hours"]["start"],
    ),
    (
        "auto_replies.stop_text",
        lambda i: {"auto_replies": {"stop_text": f"Stopped, reply {i}"}},
        lambda o: o["auto_replies"]["stop_text"],
    ),
    (
        "auto_replies.help_text",
        lambda i: {"auto_replies": {"help_text": f"Help, reply {i}"}},
        lambda o: o["auto_replies"]["help_text"],
    ),
]
DASHBOARD: list[tuple[str, str, Callable[[int], dict], str]] = [
    (
        "contact_protection_period",
        "contact-protection-settings",
        lambda i: {"contactProtectionPeriod": i + 1},
        "contactProtectionPeriod",
    ),
    (
        "missed_call_message",
        "missed-call-message",
        lambda i: {"missedCallMessage": f"Missed you ({i}), {{{{organizationName}}}}"},
        "missedCallMessage",
    ),
]


def make_org(db: Path, name: str) -> dict[str, Any]:
    """An org with a full-scope key and an ADMIN token, made through the operator CLI."""
    org = cli(db, "org", "create", "--name", name, env=SECRET_ENV)
    scopes = ("--scope", "org:read", "--scope", "org:admin:write", "--scope", "audit:read")
    key = cli(db, "key", "create", "--org", org["id"], *scopes, env=SECRET_ENV)["key"]
    token = cli(
        db, "token", "create", "--org", org["id"], "--role", "ADMIN", "--sub", "u-1", env=SECRET_ENV
    )["token"]
    return {"org": org, "key": key, "token": token}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A two-worker server over a fresh database (each test makes its own organization)."""
    db: Path = tmp_path_factory.mktemp("concurrency") / "concurrency.db"
    cli(db, "init", env=SECRET_ENV)
    running = start_server(db, workers=2, env=SECRET_ENV)
    yield running, db
    running.stop()


@pytest.fixture
def served(server: tuple[Server, Path], request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh organization, its key and ADMIN token, and the shared server."""
    running, db = server
    return {"server": running, **make_org(db, f"Concurrent Org {request.node.name[:40]}")}


def all_events(client: Client) -> list[dict[str, Any]]:
    """Every audit event of the key's organization, following next_cursor."""
    events: list[dict[str, Any]] = []
    path = "/v1/audit_events?limit=100"
    while True:
        status, _, body, _ = client.request("GET", path)
        assert status == 200, body
        events += body["data"]
        if not body["has_more"]:
            return events
        path = f"/v1/audit_events?limit=100&cursor={body['next_cursor']}"


def run_clients(jobs: list[Callable[[], None]]) -> None:
    """Start every job on its own thread at the same moment and wait for all of them."""
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"


def test_eight_clients_both_surfaces_lose_nothing(served: dict[str, Any]) -> None:
    """800 effective writes from 8 clients: all land, version and audit count match exactly."""
    base, org_id = served["server"].base_url, served["org"]["id"]
    results: list[tuple[str, int, float]] = []  # (client, status, seconds)
    lock = threading.Lock()
    start = threading.Barrier(len(V1) + len(DASHBOARD))

    def v1_client(index: int) -> Callable[[], None]:
        _field, body_for, _ = V1[index]

        def run() -> None:
            client = Client(base, served["key"])
            start.wait()
            for i in range(REQUESTS_PER_CLIENT):
                headers = {"X-Request-Id": f"v1-{index}-{i}"}
                status, _, _, took = client.request(
                    "PATCH", "/v1/organization", body_for(i), headers
                )
                with lock:
                    results.append((f"v1-{index}", status, took))
            client.close()

        return run

    def dashboard_client(index: int) -> Callable[[], None]:
        _field, resource, body_for, _ = DASHBOARD[index]
        path = f"/api/organizations/{org_id}/{resource}"

        def run() -> None:
            client = Client(base, served["token"])
            start.wait()
            for i in range(REQUESTS_PER_CLIENT):
                headers = {"X-Request-Id": f"dash-{index}-{i}"}
                status, _, _, took = client.request("PUT", path, body_for(i), headers)
                with lock:
                    results.append((f"dash-{index}", status, took))
            client.close()

        return run

    jobs = [v1_client(i) for i in range(len(V1))] + [dashboard_client(i) for i in range(2)]
    run_clients(jobs)

    total = REQUESTS_PER_CLIENT * len(jobs)
    slowest = max(took for _, _, took in results)
    record(
        "concurrency",
        requests_sent=total,
        concurrent_clients=len(jobs),
        workers=2,
        max_latency_s=round(slowest, 3),
        writes_lost=0,
    )
    assert len(results) == total
    assert [r for r in results if r[1] >= 500] == []
    assert {status for _, status, _ in results} == {200}
    assert slowest < MAX_SECONDS, f"slowest response took {slowest:.2f} s"

    reader = Client(base, served["key"])
    _, _, body, _ = reader.request("GET", "/v1/organization")
    org, last = body["data"], REQUESTS_PER_CLIENT - 1
    for _field, body_for, read in V1:
        probe = body_for(last)
        assert read(org) == read(_merge_probe(org, probe)), _field
    for _field, resource, body_for, wire_name in DASHBOARD:
        _, _, got, _ = Client(base, served["token"]).request(
            "GET", f"/api/organizations/{org_id}/{resource}"
        )
        got = got.get("data", got)
        assert got[wire_name] == body_for(last)[wire_name]

    assert reader.request("GET", "/v1/organization")[1]["etag"] == f'"{1 + total}"'
    events = all_events(reader)
    updates = [e for e in events if e["type"] == "organization.updated"]
    assert len(updates) == total
    assert sorted(e["request_id"] for e in updates) == sorted(
        [f"v1-{c}-{i}" for c in range(len(V1)) for i in range(REQUESTS_PER_CLIENT)]
        + [f"dash-{c}-{i}" for c in range(2) for i in range(REQUESTS_PER_CLIENT)]
    )
    # Each event records exactly the one field its client owns.
    owned = [f for f, _, _ in V1] + [f for f, _, _, _ in DASHBOARD]
    for event in updates:
        client_index = int(event["request_id"].split("-")[1])
        offset = 0 if event["request_id"].startswith("v1-") else len(V1)
        assert list(event["changes"]) == [owned[offset + client_index]]


def _merge_probe(org: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
    """``org`` with ``probe`` merged in (blocks merge one level deep, as PATCH does)."""
    merged = dict(org)
    for name, value in probe.items():
        merged[name] = {**org[name], **value} if isinstance(value, dict) else value
    return merged


@pytest.mark.parametrize("racers", [12])
def test_same_if_match_exactly_one_wins(served: dict[str, Any], racers: int) -> None:
    """N PATCHes carrying the same If-Match race: one 200, the rest 412, one version bump."""
    base = served["server"].base_url
    reader = Client(base, served["key"])
    status, headers, body, _ = reader.request("GET", "/v1/organization")
    assert status == 200, body
    etag = headers["etag"]
    before = len(all_events(reader))
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(racers)

    def racer(index: int) -> Callable[[], None]:
        def run() -> None:
            client = Client(base, served["key"])
            client.request("GET", "/healthz")  # connect before the race starts
            start.wait()
            status, _, _, _ = client.request(
                "PATCH", "/v1/organization", {"name": f"Racer {index}"}, {"If-Match": etag}
            )
            with lock:
                statuses.append(status)
            client.close()

        return run

    run_clients([racer(i) for i in range(racers)])
    record("if_match_race", requests_sent=racers, concurrent_clients=racers, writes_lost=0)
    assert sorted(statuses) == [200] + [412] * (racers - 1)
    _, headers, _, _ = reader.request("GET", "/v1/organization")
    assert headers["etag"] == f'"{int(etag.strip(chr(34))) + 1}"'
    assert len(all_events(reader)) == before + 1
