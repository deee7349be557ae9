"""Shared fixtures: a fresh temporary database and app per test, orgs, keys and tokens."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from handlers.auth.api_keys import mint_key
from handlers.auth.jwt import issue_token
from handlers.config import Config
from handlers.http.app import create_app
from storage import Store, open_store

OPERATOR = {"type": "operator", "id": "tests", "role": None}
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
#: A well-formed organization id that no test creates.
MISSING_ORG = "01890a5d-ac96-774b-bcce-b302099a8057"
#: Dashboard roles: (role, member of the target org, GET status, PUT status).
ROLE_MATRIX = [
    ("USER", True, 200, 403),
    ("ADMIN", True, 200, 200),
    ("USER", False, 403, 403),
    ("ADMIN", False, 403, 403),
    ("SUPERADMIN", False, 200, 200),
]


class SyncStore:
    """A store's async interface called synchronously, for tests arranging and re-reading
    state: each call runs to completion on an event loop of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return lambda *args, **kwargs: asyncio.run(attribute(*args, **kwargs))


def sync_store(path: Path, **options: Any) -> SyncStore:
    """A migrated store over the database at ``path``, driven synchronously."""
    store = SyncStore(open_store(path, **options))
    store.migrate()
    return store


def rename(store: SyncStore, org_id: str, name: str) -> tuple[dict[str, Any], Any]:
    """One effective change through the store, as the operator."""
    return store.modify_org(
        org_id,
        lambda o: ({**o, "name": name}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A config pointing at a fresh temporary database, with a known HS256 secret."""
    return Config(
        db_path=tmp_path / "orgsettings.db",
        jwt_secret=JWT_SECRET,
        log_requests=False,
        key_usage_seconds=0.05,
    )


@pytest.fixture
def app_store(config: Config) -> Store:
    """The store the app serves from (the app migrates it at start and closes it at stop);
    tests replace its methods to make the database fail."""
    return open_store(config.db_path, key_usage_seconds=config.key_usage_seconds)


@pytest.fixture
def app(config: Config, app_store: Store):
    """The full Connexion app (both surfaces, all middleware) over the temporary database."""
    return create_app(config, store=app_store)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """A test client that drives the app through the whole ASGI stack, lifespan included."""
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def store(config: Config) -> Iterator[SyncStore]:
    """A second store over the app's database, for arranging state and re-reading what a
    request did (as another process would)."""
    opened = sync_store(config.db_path)
    yield opened
    opened.close()


@pytest.fixture
def org(store: SyncStore) -> dict[str, Any]:
    """A commercial organization with every default."""
    return store.create_org(name="Acme Health", actor=OPERATOR)


@pytest.fixture
def make_key(store: SyncStore) -> Callable[..., str]:
    """Mint an API key for an org with the given scopes; returns the secret."""

    def make(org_id: str, *scopes: str) -> str:
        secret, prefix, key_hash = mint_key()
        store.create_key(
            org_id=org_id, key_hash=key_hash, prefix=prefix, scopes=list(scopes), actor=OPERATOR
        )
        return secret

    return make


@pytest.fixture
def admin_key(org: dict[str, Any], make_key: Callable[..., str]) -> str:
    """A key holding every scope for ``org``."""
    return make_key(org["id"], "org:read", "org:admin:write", "audit:read")


@pytest.fixture
def auth(config: Config) -> Callable[..., dict[str, str]]:
    """Authorization headers for a dashboard user: ``auth(role, org_id, sub=...)``."""

    def make(role: str, org_id: str | None, sub: str = "user-1") -> dict[str, str]:
        return bearer(issue_token(config, org_id=org_id, role=role, sub=sub)["token"])

    return make


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header for a key or token."""
    return {"Authorization": f"Bearer {secret}"}
