"""Auth hardening: hash-only key lookup, instant revocation across workers, no secrets in logs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import POSTGRESQL, bearer, query
from handlers.app import create_app
from handlers.auth.jwt import issue_token
from live import cli, start_server
from reliability import Client, record
from storage import open_store

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "auth-hardening-secret-" + "a" * 32}
WRONG_KEY = "am_live_" + "W" * 40
WRONG_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4Iiwicm9sZSI6IkFETUlOIiwiZXhwIjo0MTAyNDQ0"
    "ODAwfQ.not-the-signature-at-all-0123456789abcdef"
)
REVOKED_PROBES = 40


class RecordingStore:
    """A store that records the hashes it is asked to look keys up by."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def key_by_hash(self, key_hash: str, **options: Any) -> Any:
        """Record, then look up."""
        self.asked.append(key_hash)
        return await self.store.key_by_hash(key_hash, **options)


def test_keys_are_looked_up_by_their_sha256_only(config, admin_key) -> None:
    """The store is asked for sha256(key), never the key; malformed keys don't reach it."""
    recording = RecordingStore(open_store(config.database))
    with create_app(config, store=recording).test_client() as client:
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
        assert client.get("/v1/organization", headers=bearer(WRONG_KEY)).status_code == 401
        assert client.get("/v1/organization", headers=bearer("am_live_short")).status_code == 401
    expected = [hashlib.sha256(k.encode()).hexdigest() for k in (admin_key, WRONG_KEY)]
    assert recording.asked == expected


def test_no_secret_is_stored_in_the_database(client, store, config, admin_key) -> None:
    """Neither the key nor its unhashed body appears anywhere in the database: its files
    (SQLite), or any row of any table (PostgreSQL)."""
    client.get("/v1/organization", headers=bearer(admin_key))
    store.close()
    secret_body = admin_key.removeprefix("am_live_").encode()
    if POSTGRESQL:
        tables = query(
            config.database,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        assert ("api_keys",) in tables
        for (table,) in tables:
            rows = query(config.database, f'SELECT t::text FROM "{table}" t')
            assert rows or table != "api_keys"
            assert all(secret_body.decode() not in text for (text,) in rows), table
        return
    files = [p for p in config.db_path.parent.iterdir() if p.name.startswith(config.db_path.name)]
    assert files
    for path in files:
        assert secret_body not in path.read_bytes(), path.name


@pytest.mark.parametrize("surface", ["v1", "dashboard"])
@pytest.mark.parametrize("outcome", ["ok", "refused"])
def test_authenticated_responses_are_not_cacheable(
    client, config, org, admin_key, surface, outcome
) -> None:
    """Cache-Control: no-store and nosniff on answers to authenticated requests, good or bad."""
    if surface == "v1":
        path, secret = "/v1/organization", admin_key if outcome == "ok" else WRONG_KEY
    else:
        path = f"/api/organizations/{org['id']}/contact-protection-settings"
        token = issue_token(config, org_id=org["id"], role="ADMIN", sub="u")["token"]
        secret = token if outcome == "ok" else WRONG_TOKEN
    response = client.get(path, headers=bearer(secret))
    assert response.status_code == (200 if outcome == "ok" else 401)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A two-worker server, an org, a full key and an ADMIN token."""
    db: Path = tmp_path_factory.mktemp("auth") / "auth.db"
    cli(db, "init", env=SECRET_ENV)
    org = cli(db, "org", "create", "--name", "Auth Org", env=SECRET_ENV)["id"]
    scopes = ("--scope", "org:read", "--scope", "org:admin:write", "--scope", "audit:read")
    key = cli(db, "key", "create", "--org", org, *scopes, env=SECRET_ENV)
    token = cli(
        db, "token", "create", "--org", org, "--role", "ADMIN", "--sub", "u", env=SECRET_ENV
    )["token"]
    # Without the failed-authentication limit: these tests send dozens of refused credentials
    # on purpose (tests/test_rate_limits.py covers the limit).
    unlimited = {**SECRET_ENV, "ORGSETTINGS_AUTH_FAILURES_PER_MINUTE": "0"}
    server = start_server(db, workers=2, env=unlimited)
    yield {"server": server, "db": db, "org": org, "key": key, "token": token}
    server.stop()


def test_a_revoked_key_stops_working_at_once_in_every_worker(two_workers) -> None:
    """Revoked through the CLI: every following request, on fresh connections, is 401."""
    base, org = two_workers["server"].base_url, two_workers["org"]
    key = cli(
        two_workers["db"], "key", "create", "--org", org, "--scope", "org:read", env=SECRET_ENV
    )
    for _ in range(10):  # both workers have served (and would have cached) the key
        client = Client(base, key["key"])
        assert client.request("GET", "/v1/organization")[0] == 200
        client.close()
    cli(two_workers["db"], "key", "revoke", key["id"], env=SECRET_ENV)
    statuses = []
    for _ in range(REVOKED_PROBES):
        client = Client(base, key["key"])  # a new connection may land on either worker
        statuses.append(client.request("GET", "/v1/organization")[0])
        client.close()
    record("revocation", requests_sent=10 + REVOKED_PROBES)
    assert statuses == [401] * REVOKED_PROBES


def test_keys_and_tokens_never_reach_the_log(two_workers) -> None:
    """After good and bad keys and tokens on both surfaces, none appears in the server's log."""
    base, org = two_workers["server"].base_url, two_workers["org"]
    key, token = two_workers["key"]["key"], two_workers["token"]
    dashboard = f"/api/organizations/{org}/missed-call-message"
    calls = [
        (key, "GET", "/v1/organization", None, 200),
        (key, "PATCH", "/v1/organization", {"name": "Logged Org"}, 200),
        (WRONG_KEY, "GET", "/v1/organization", None, 401),
        (key + "x", "GET", "/v1/organization", None, 401),
        (token, "GET", dashboard, None, 200),
        (token, "PUT", dashboard, {"missedCallMessage": "hi"}, 200),
        (WRONG_TOKEN, "GET", dashboard, None, 401),
        (token[:-4] + "AAAA", "GET", dashboard, None, 401),
        (token, "GET", "/v1/organization", None, 401),  # a token on the key surface
        (key, "GET", dashboard, None, 401),  # a key on the token surface
    ]
    for secret, method, path, body, status in calls:
        assert Client(base, secret).request(method, path, body)[0] == status, (method, path)
    logged = two_workers["server"].log_once(
        lambda text: text.count('"orgsettings.access"') >= len(calls)
    )
    assert logged.count('"orgsettings.access"') >= len(calls)  # one line per request
    log = two_workers["server"].log()
    secrets = [key, key.removeprefix("am_live_"), WRONG_KEY, token, WRONG_TOKEN]
    secrets += [token.split(".")[2], SECRET_ENV["ORGSETTINGS_JWT_SECRET"]]
    for secret in secrets:
        assert secret not in log
    record("log_secrets", requests_sent=len(calls))
