"""SQLite connections, the cross-process write lock, and schema migrations."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from storage.migrations import MIGRATIONS


def connect(path: str | Path) -> Database:
    """Open one connection with the pragmas every connection needs (WAL, FULL sync, FKs)."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a write answered 200 survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    # Writers are serialized by WriteLock before they touch SQLite, so this timeout is only a
    # backstop for outside tools (sqlite3 shell, backups) holding the database.
    conn.execute("PRAGMA busy_timeout=30000")
    return Database(conn)


class WriteLock:
    """One writer at a time across threads and processes, without spinning on SQLITE_BUSY.

    SQLite answers a second writer with SQLITE_BUSY and leaves the retry to a sleep loop; with
    two worker processes that loop showed p99 latencies near a second. A blocking ``flock`` on a
    file beside the database queues writers in the kernel instead, and the thread lock keeps the
    threads of one process from contending for that flock.
    """

    def __init__(self, db_path: str | Path) -> None:
        self._path = f"{db_path}.lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the duration of the block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False at once if someone holds it."""
        if not self._thread_lock.acquire(blocking):
            return False
        try:
            flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
            fcntl.flock(self._file(), flags)
        except BlockingIOError:
            self._thread_lock.release()
            return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        """Give the lock back (from any thread)."""
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        """Release the lock file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def schema_version(db: Database) -> int:
    """The migration number the database is at."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def latest_version() -> int:
    """The migration number this code expects."""
    return len(MIGRATIONS)


def migrate(db: Database, lock: WriteLock) -> int:
    """Apply every pending numbered migration, each in its own transaction; return the version."""
    with lock.held():
        current = schema_version(db)
        for number, step in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            with db.atomic():
                step(db)
                # PRAGMA user_version is transactional in SQLite: it commits with the step.
                db.execute(f"PRAGMA user_version = {number}")
        return schema_version(db)
