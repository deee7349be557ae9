"""Shared fixtures: a fresh temporary database and app per test, orgs, keys and tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from handlers.api_keys import mint_key
from handlers.app import create_app
from handlers.config import Config
from handlers.jwt_auth import issue_token
from storage import Store

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


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A config pointing at a fresh temporary database, with a known HS256 secret."""
    return Config(db_path=tmp_path / "orgsettings.db", jwt_secret=JWT_SECRET, log_requests=False)


@pytest.fixture
def app(config: Config):
    """The full Connexion app (both surfaces, all middleware) over the temporary database."""
    application = create_app(config)
    yield application
    application.app.extensions["orgsettings"].store.close()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """A test client that drives the app through the whole ASGI middleware stack."""
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def store(app) -> Store:
    """The store the app writes to, for arranging state and re-reading what a request did."""
    return app.app.extensions["orgsettings"].store


@pytest.fixture
def org(store: Store) -> dict[str, Any]:
    """A commercial organization with every default."""
    return store.create_org(name="Acme Health", actor=OPERATOR)


@pytest.fixture
def make_key(store: Store) -> Callable[..., str]:
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
