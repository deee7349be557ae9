"""The SQLite backend of ``storage.store.Store``: reads on a small pool of reader threads
(``storage.sqlite.readers``), writes on the group-commit writer thread. Nothing here runs a
database call on the caller's event loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

import storage.sqlite
from storage.errors import StorageUnavailable
from storage.key_usage import KeyUsage
from storage.sqlite import audit, migrations
from storage.sqlite.connection import WriteLock, connect, file_identity, unavailable
from storage.sqlite.readers import ReaderPool
from storage.sqlite.writer import Writer
from storage.store import Store

T = TypeVar("T")

#: Default bound on every wait for the database: a write that cannot start within it, or a
#: statement kept waiting that long by another program's lock, fails with StorageUnavailable.
DEFAULT_WAIT_SECONDS = 5.0
#: Below this much free disk space a write may fail for want of room for its WAL frames, so
#: the store reports itself not ready before the first write fails.
MIN_FREE_BYTES = 256 * 1024
#: Reads run here; WAL readers never wait for the writer, so a few threads suffice.
READER_THREADS = 4
#: ``close`` waits this long for reads still running; then it interrupts them (SQLite's
#: ``interrupt``) and waits as long again.
CLOSE_SECONDS = 30.0


class SqliteStore(Store):
    """One SQLite database file; see the module docstring."""

    sql = storage.sqlite

    def __init__(
        self,
        path: str | Path,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        key_usage: KeyUsage | None = None,
        create: bool = True,
    ) -> None:
        super().__init__(wait_seconds=wait_seconds, key_usage=key_usage)
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = WriteLock(self.path)
        self._writer = Writer(
            self.path,
            lambda first: connect(self.path, wait_seconds, create=create and first),
            self._lock,
            wait_seconds,
            self._key_usage,
            self._observers,
        )
        self._readers = ReaderPool(READER_THREADS, name="reader")
        self._local = threading.local()
        self._opened: list[Database] = []
        self._opened_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> Database:
        return connect(self.path, self.wait_seconds)

    # -- how work reaches the database --------------------------------------------------------

    def _reader_db(self) -> Database:
        """This reader thread's connection, reopened when the file was removed or replaced."""
        db = getattr(self._local, "db", None)
        identity = file_identity(self.path)
        if db is not None and identity != self._local.identity:
            db.close()
            db = None
        if db is None:
            if identity is None:
                raise StorageUnavailable("the database file is missing", retry_after=5)
            db = self._local.db = self._connect()
            self._local.identity = file_identity(self.path)
            with self._opened_lock:
                self._opened.append(db)
        return db

    def _run_read(self, fn: Callable[[Database], T], deadline: float) -> T:
        try:
            if time.monotonic() > deadline:
                # Queued behind reads that each waited out a lock: past the bound already.
                raise StorageUnavailable("the database is busy")
            return fn(self._reader_db())
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            error = unavailable(exc)
        except StorageUnavailable as exc:
            error = exc
        raise self._fault(error)

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(db, ...)`` on a reader thread (WAL: never waits for the writer)."""
        deadline = time.monotonic() + self.wait_seconds
        work = _bound(fn, args, kwargs)
        return await self._readers.run(partial(self._run_read, work, deadline))

    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(db, ...)`` in its own savepoint of the writer's next group commit."""
        work = _bound(fn, args, kwargs)
        return await asyncio.wrap_future(self._writer.submit(work))

    async def _audit_chains(self, org_id: str | None) -> list[list[dict[str, Any]]]:
        """Every chain (or one) in one read transaction: one snapshot across them all."""

        def chains(db: Database) -> list[list[dict[str, Any]]]:
            with db.atomic():
                return audit.chain(db, org_id)

        return await self._read(chains)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to do: SQLite's connections live on the store's own threads."""

    async def migrate(self) -> int:
        """Bring the schema up to date under the write lock; return the schema version.

        A database already at the latest version is left alone without taking the lock, so
        a server starts while another process is writing.
        """
        if self.path.exists():
            version = await self._read(migrations.schema_version)
            if version == migrations.latest_version():
                return version
        return await asyncio.wrap_future(
            self._writer.submit(migrations.migrate, transactional=False)
        )

    async def is_ready(self) -> bool:
        """True when the database answers within the bounded wait, fully migrated, and takes
        writes: the last write did not fail for a fault of its own, and its disk has room."""

        def check(db: Database) -> tuple[int, int]:
            disk = os.statvfs(self.path.parent)
            return migrations.schema_version(db), disk.f_bavail * disk.f_frsize

        try:
            version, free = await asyncio.wait_for(self._read(check), self.wait_seconds)
        except (StorageUnavailable, TimeoutError, OSError):
            return False
        return (
            version == migrations.latest_version()
            and self._writer.failing is None
            and free >= MIN_FREE_BYTES
        )

    async def close(self) -> None:
        """Write pending key uses, stop the writer, close every connection; closing twice does
        nothing."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        # Reads not started fail (StorageUnavailable); the ones running finish.
        if not self._readers.close(timeout=CLOSE_SECONDS):
            with self._opened_lock:  # a read still running (a long scan): cut it short
                for db in self._opened:
                    db.conn.interrupt()
            self._readers.close(timeout=CLOSE_SECONDS)
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for db in opened:
            db.close()
        self._lock.close()

    def note_key_use(self, key_id: str) -> None:
        """Remember that a key was used now (written in batches; see storage.key_usage)."""
        self._writer.ensure_started()  # it writes the batches
        super().note_key_use(key_id)


def _bound(
    fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[Database], T]:
    """``fn`` with its arguments, waiting for the connection (every SQL function's first)."""
    if not args and not kwargs:
        return fn
    return lambda db: fn(db, *args, **kwargs)
