"""The app factory and the request path: what one app does, and what it must not do."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import JWT_SECRET, OPERATOR, bearer, new_database, sync_store
from handlers.app import create_app
from handlers.auth.api_keys import hash_key
from handlers.config import Config


def _config(tmp_path: Path, name: str = "app.db", **options: Any) -> Config:
    return Config(
        database=new_database(tmp_path, name),
        state_dir=tmp_path,
        jwt_secret=JWT_SECRET,
        log_requests=False,
        **options,
    )


def test_a_second_app_in_one_process_gets_one_middleware_stack(tmp_path: Path) -> None:
    """Regression: a shared middleware list once gave the second app two request-id layers."""
    for name in ("a.db", "b.db"):
        with create_app(_config(tmp_path, name)).test_client() as client:
            response = client.get("/v1/organization")
        assert response.status_code == 401
        assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


def _process_state() -> tuple[Any, ...]:
    return (
        sys.getswitchinterval(),
        gc.get_freeze_count(),
        list(logging.getLogger().handlers),
        list(logging.getLogger("orgsettings").handlers),
        logging.getLogger("connexion").level,
    )


def test_building_an_app_changes_nothing_process_wide(tmp_path: Path) -> None:
    """Logging, the GC and the GIL switch interval are the server's business, not the app's."""
    before = _process_state()
    with create_app(_config(tmp_path)).test_client() as client:
        assert client.get("/healthz").status_code == 200
    assert _process_state() == before


def test_many_organizations_paths_each_reach_their_own(client, store, auth) -> None:
    """Requests to many organizations' paths, each repeated, each reach their own organization."""
    orgs = [store.create_org(name=f"Org {n}", actor=OPERATOR) for n in range(4)]
    for org in [*orgs, *orgs, *reversed(orgs)]:
        for n, method in enumerate(("PUT", "GET", "PUT")):
            url = f"/api/organizations/{org['id']}/contact-protection-settings"
            body = {"contactProtectionPeriod": n + 1}
            response = client.request(method, url, json=body, headers=auth("SUPERADMIN", None))
            assert response.status_code == 200, (method, response.text)
        assert store.get_org(org["id"])["contact_protection_period"] == 3


# -- regression: a repeated query parameter (the validator read one value, the handler another)


@pytest.mark.parametrize(
    "query",
    [
        "limit=100000&limit=5",
        "limit=5&limit=100000",
        "limit=-1&limit=5",
        "limit=99999999999999999999&limit=5",
        "limit=5&limit=5",
        "cursor=a&cursor=b",
    ],
)
def test_a_repeated_query_parameter_is_refused(client, admin_key, query) -> None:
    """A parameter that is not an array may appear once: a repeat is 422 naming it."""
    response = client.get(f"/v1/audit_events?{query}", headers=bearer(admin_key))
    assert response.status_code == 422, response.text
    name = query.split("=")[0]
    assert response.json()["error"]["details"] == {name: "must not be repeated"}


def test_the_limit_validated_is_the_limit_applied(client, store, org, admin_key) -> None:
    """?limit=N returns N events when there are more."""
    for n in range(8):
        store.modify_org(
            org["id"],
            lambda o, n=n: ({**o, "name": f"Name {n}"}, None),
            actor=OPERATOR,
            surface="cli",
            request_id=None,
        )
    body = client.get("/v1/audit_events?limit=3", headers=bearer(admin_key)).json()
    assert len(body["data"]) == 3
    assert body["has_more"] is True


# -- regression: whether a request wrote was decided by its verb, and waits had no bound ------


@pytest.fixture
def held_write_lock(config: Config) -> Iterator[None]:
    """Another process holding the database's write lock (``<db>.lock``) for the test."""
    fd = os.open(f"{config.db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.fixture
def quick_config(config: Config) -> Config:
    """The test config with a short bound on database waits."""
    return Config(**{**config.__dict__, "db_wait_seconds": 0.5})


@pytest.mark.sqlite_only
def test_requests_that_write_nothing_never_wait_for_the_write_lock(
    quick_config, store, org, admin_key, auth, held_write_lock
) -> None:
    """With the write lock held elsewhere: reads, unknown paths and refused requests answer
    at once; none of them takes the lock."""
    url = f"/api/organizations/{org['id']}/missed-call-message"
    with create_app(quick_config).test_client() as client:
        started = time.monotonic()
        for _ in range(3):
            assert client.post("/v1/nope", json={}).status_code == 404
            assert client.post("/v1/organization", json={}).status_code == 405
            assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
            assert client.get(url, headers=auth("USER", org["id"])).status_code == 200
            body = {"missedCallAutoMessageEnabled": False}
            assert client.put(url, json=body, headers=auth("USER", org["id"])).status_code == 403
        assert time.monotonic() - started < 2


@pytest.mark.sqlite_only
def test_a_write_that_cannot_start_is_503_with_retry_after(
    quick_config, store, org, admin_key, auth, held_write_lock
) -> None:
    """A write that cannot get the lock within the bound: 503 on both surfaces, no change."""
    with create_app(quick_config).test_client() as client:
        started = time.monotonic()
        v1 = client.patch("/v1/organization", json={"name": "X"}, headers=bearer(admin_key))
        dashboard = client.put(
            f"/api/organizations/{org['id']}/contact-protection-settings",
            json={"contactProtectionPeriod": 5},
            headers=auth("ADMIN", org["id"]),
        )
        assert time.monotonic() - started < 4
    assert v1.status_code == 503
    assert v1.headers["Retry-After"].isdigit()
    assert v1.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert v1.json()["error"]["request_id"] == v1.headers["x-request-id"]
    assert dashboard.status_code == 503
    assert dashboard.headers["Retry-After"].isdigit()
    assert dashboard.json()["error"] == "Service unavailable"
    assert store.get_org(org["id"])["version"] == org["version"]


# -- regression: every key use was a write on the request path --------------------------------


def test_key_uses_are_written_in_batches_not_per_request(config, store, org, make_key) -> None:
    """Twenty keys used: nothing written while the app runs (long interval), all at stop."""
    slow = Config(**{**config.__dict__, "key_usage_seconds": 3600.0})
    keys = [make_key(org["id"], "org:read") for _ in range(20)]
    with create_app(slow).test_client() as client:
        for key in keys:
            assert client.get("/v1/organization", headers=bearer(key)).status_code == 200
        assert all(store.key_by_hash(hash_key(k))["last_used_at"] is None for k in keys)
    reopened = sync_store(config.database)
    try:
        assert all(reopened.key_by_hash(hash_key(k))["last_used_at"] for k in keys)
    finally:
        reopened.close()


@pytest.mark.sqlite_only
def test_an_outside_program_holding_sqlite_s_lock_delays_nothing_but_writes(
    quick_config, store, org, admin_key
) -> None:
    """Another program in BEGIN EXCLUSIVE (a sqlite3 shell, a backup): probes and reads answer
    at once, a write is 503 within the bound, and nothing is ever 500."""
    with create_app(quick_config).test_client() as client:
        with contextlib.closing(
            sqlite3.connect(quick_config.db_path, isolation_level=None)
        ) as outside:
            outside.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 200
            assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
            assert time.monotonic() - started < 1
            patch = client.patch(
                "/v1/organization", json={"name": "Blocked"}, headers=bearer(admin_key)
            )
            assert patch.status_code == 503
            assert time.monotonic() - started < 3
            outside.execute("ROLLBACK")
        again = client.patch("/v1/organization", json={"name": "Free"}, headers=bearer(admin_key))
        assert again.status_code == 200
