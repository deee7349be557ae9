"""Storage for orgsettings: one async interface (``Store``) that owns every transaction.

Nothing outside this package writes SQL. ``open_store`` picks the backend from the location:
a ``postgresql://`` URL is PostgreSQL (``storage.postgresql``), anything else an SQLite file
(``storage.sqlite``). Each operation is written once, in ``storage.store.Store``, over one SQL
function per dialect; the records both backends store and show are made in ``storage.records``.
"""

from pathlib import Path

from storage.errors import (
    IdempotencyConflict,
    NotFoundError,
    StorageUnavailable,
    VersionMismatchError,
)
from storage.key_usage import DEFAULT_INTERVAL_SECONDS, KeyUsage
from storage.postgresql.store import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_POOL_SIZE,
    DEFAULT_STATEMENT_TIMEOUT_SECONDS,
    PostgresStore,
    is_postgresql_url,
)
from storage.sqlite.connection import check_database_file
from storage.sqlite.store import DEFAULT_WAIT_SECONDS, SqliteStore
from storage.store import Actor, Mutator, Store

__all__ = [
    "Actor",
    "IdempotencyConflict",
    "Mutator",
    "NotFoundError",
    "StorageUnavailable",
    "Store",
    "VersionMismatchError",
    "check_database_file",
    "is_postgresql_url",
    "open_store",
]


def open_store(
    location: str | Path,
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    key_usage_seconds: float = DEFAULT_INTERVAL_SECONDS,
    create: bool = True,
    pool_size: int = DEFAULT_POOL_SIZE,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
) -> Store:
    """The store at ``location``; opening connects lazily, so it costs nothing until used.

    SQLite: without ``create`` a database file that does not exist is refused at once
    (StorageUnavailable) and nothing is created: every command but ``init`` and ``demo`` opens
    it that way. PostgreSQL: the database must exist (creating one is its administrator's
    work); ``create`` does not apply, and the pool and timeouts apply to PostgreSQL only.
    """
    if is_postgresql_url(location):
        return PostgresStore(
            str(location),
            wait_seconds=wait_seconds,
            key_usage=KeyUsage(interval=key_usage_seconds),
            pool_size=pool_size,
            statement_timeout=statement_timeout,
            connect_timeout=connect_timeout,
        )
    if not create and not Path(location).is_file():
        raise StorageUnavailable(f"no database at {location}", retry_after=5)
    return SqliteStore(
        location,
        wait_seconds=wait_seconds,
        key_usage=KeyUsage(interval=key_usage_seconds),
        create=create,
    )
