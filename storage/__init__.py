"""Storage for orgsettings: one async interface (``Store``) that owns every transaction.

Nothing outside this package writes SQL. ``open_store`` picks the backend from the location:
a file path is SQLite (``storage.sqlite``).
"""

from pathlib import Path

from storage.errors import NotFoundError, StorageUnavailable, VersionMismatchError
from storage.interface import Actor, Mutator, Store
from storage.key_usage import DEFAULT_INTERVAL_SECONDS, KeyUsage
from storage.sqlite.store import DEFAULT_WAIT_SECONDS, SqliteStore

__all__ = [
    "Actor",
    "Mutator",
    "NotFoundError",
    "StorageUnavailable",
    "Store",
    "VersionMismatchError",
    "open_store",
]


def open_store(
    location: str | Path,
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    key_usage_seconds: float = DEFAULT_INTERVAL_SECONDS,
    create: bool = True,
) -> Store:
    """The store at ``location``; opening connects lazily, so it costs nothing until used.

    Without ``create`` a database that does not exist is refused at once (StorageUnavailable)
    and nothing is created: every command but ``init`` and ``demo`` opens it that way.
    """
    if not create and not Path(location).is_file():
        raise StorageUnavailable(f"no database at {location}", retry_after=5)
    return SqliteStore(
        location,
        wait_seconds=wait_seconds,
        key_usage=KeyUsage(interval=key_usage_seconds),
        create=create,
    )
