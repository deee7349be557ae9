"""Shared fixtures: a fresh temporary database and app per test, orgs, keys and tokens.

The suite runs once per backend (``make test`` runs both). ``ORGSETTINGS_TEST_BACKEND`` picks
it: ``sqlite`` (the default) gives each test a fresh database file, ``postgresql`` a fresh
database in the server at ``ORGSETTINGS_TEST_POSTGRES`` (a throwaway cluster that
tools/postgres_cluster.py starts). Tests marked ``sqlite_only`` are about the SQLite file
itself (its lock, its WAL, its disk) and run in the SQLite pass only; tests marked
``postgresql_only`` run in the PostgreSQL pass only. With ``postgresql`` chosen and no server
given, every test that needs a database fails: none is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from starlette.testclient import TestClient
from ulid import ULID

from handlers.app import create_app
from handlers.auth.api_keys import mint_key
from handlers.auth.jwt import issue_token
from handlers.config import Config
from live import create_database
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


BACKEND = os.environ.get("ORGSETTINGS_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"ORGSETTINGS_TEST_BACKEND must be sqlite or postgresql, not {BACKEND!r}")
POSTGRESQL = BACKEND == "postgresql"
#: Read once, at import: some tests clear every ORGSETTINGS_* variable for the code under test.
POSTGRES_SERVER_URL = os.environ.get("ORGSETTINGS_TEST_POSTGRES")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: about the SQLite file; SQLite pass only")
    config.addinivalue_line("markers", "postgresql_only: PostgreSQL pass only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the other backend's own tests (deselected, not skipped: they run in its pass)."""
    other = "sqlite_only" if POSTGRESQL else "postgresql_only"
    kept = [item for item in items if other not in item.keywords]
    left_out = [item for item in items if other in item.keywords]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


class PostgresServer:
    """The test PostgreSQL server: makes a fresh, empty database per test, drops them at exit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []
        self._mutex = threading.Lock()

    def new_database(self) -> str:
        """A fresh empty database's URL."""
        name = f"t_{str(ULID()).lower()}"
        url = create_database(self.url, name)
        with self._mutex:
            self.made.append(name)
        return url

    def drop_all(self) -> None:
        """Drop every database this session made."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            for name in self.made:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


_SERVER: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    """The server of the PostgreSQL pass (ORGSETTINGS_TEST_POSTGRES); fails when unset."""
    global _SERVER
    if _SERVER is None:
        url = POSTGRES_SERVER_URL
        if not url:
            pytest.fail(
                "ORGSETTINGS_TEST_POSTGRES is unset: run the PostgreSQL pass through "
                "tools/postgres_cluster.py (make test does)"
            )
        _SERVER = PostgresServer(url)
    return _SERVER


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _stop_test_loop()
    if _SERVER is not None:
        _SERVER.drop_all()


def new_database(tmp_path: Path, name: str = "orgsettings.db") -> str:
    """A fresh database of the backend under test: a file path in ``tmp_path`` (SQLite) or a
    new database's URL (PostgreSQL)."""
    if POSTGRESQL:
        return postgres_server().new_database()
    return str(tmp_path / name)


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A fresh database of the backend under test (see ``new_database``)."""
    return new_database(tmp_path)


#: What a database refusing a row raises, on either backend.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
#: Any error a database raises, on either backend.
DATABASE_ERRORS = (sqlite3.DatabaseError, psycopg.Error)


@contextlib.contextmanager
def outside(database: str | Path) -> Iterator[Any]:
    """A plain autocommit connection to the database, as another program (sqlite3, psql)
    would open it. Its placeholders are the driver's: ``?`` (SQLite) or ``%s`` (psycopg)."""
    if POSTGRESQL:
        with psycopg.connect(str(database), autocommit=True) as conn:
            yield conn
    else:
        with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as conn:
            yield conn


def query(database: str | Path, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Rows of ``statement`` (``?`` placeholders on both backends) through ``outside``."""
    if POSTGRESQL:
        statement = statement.replace("?", "%s")
    with outside(database) as conn:
        cursor = conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


_LOOP: asyncio.AbstractEventLoop | None = None


def test_loop() -> asyncio.AbstractEventLoop:
    """The one event loop, on a thread of the tests' own, where every ``SyncStore`` starts
    its store and makes its calls (a PostgreSQL store lives on the loop that started it)."""
    global _LOOP
    if _LOOP is None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="test-loop", daemon=True).start()
        _LOOP = loop
    return _LOOP


def _stop_test_loop() -> None:
    global _LOOP
    loop, _LOOP = _LOOP, None
    if loop is not None:
        loop.call_soon_threadsafe(loop.stop)
        while loop.is_running():
            time.sleep(0.01)
        loop.close()


class SyncStore:
    """A store's async interface called synchronously, for tests arranging and re-reading
    state: started on ``test_loop``, where each call then runs to completion."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._run(store.start())

    @staticmethod
    def _run(call: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(call, test_loop()).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return lambda *args, **kwargs: self._run(attribute(*args, **kwargs))


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An ASGI HTTP scope for ``method path`` with exactly ``headers``, for tests that drive the
    app directly (bytes no HTTP client would send, or a server's messages of their choosing)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def sync_store(location: str | Path, **options: Any) -> SyncStore:
    """A migrated store over the database at ``location``, driven synchronously."""
    store = SyncStore(open_store(location, **options))
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
def config(tmp_path: Path, database: str) -> Config:
    """A config pointing at a fresh temporary database, with a known HS256 secret."""
    return Config(
        database=database,
        state_dir=tmp_path,
        jwt_secret=JWT_SECRET,
        log_requests=False,
        key_usage_seconds=0.05,
    )


@pytest.fixture
def app_store(config: Config) -> Store:
    """The store the app serves from (the app migrates it at start and closes it at stop);
    tests replace its methods to make the database fail."""
    return open_store(config.database, key_usage_seconds=config.key_usage_seconds)


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
    opened = sync_store(config.database)
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
