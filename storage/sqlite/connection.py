"""SQLite connections and the cross-process write lock, both with bounded waits."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
from concurrent.futures import Future, wait
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from storage.errors import StorageUnavailable

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def connect(path: str | Path, busy_timeout: float, *, create: bool = False) -> Database:
    """Open one connection with the pragmas every connection needs (WAL, FULL sync, FKs).

    Without ``create`` a missing file is an error (``sqlite3.OperationalError``), never a new
    empty database at a mistyped or deleted path. ``busy_timeout`` (seconds) bounds how long a
    statement waits for a lock another program holds (a ``sqlite3`` shell, a backup); our own
    writers queue on ``WriteLock`` instead. Autocommit mode: transactions are only those the
    store opens.
    """
    mode = "rwc" if create else "rw"
    conn = sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}",
        uri=True,
        timeout=busy_timeout,
        check_same_thread=False,
        isolation_level=None,
    )
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a write answered 200 survives power loss, not only a process crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return Database(conn)


def unavailable(exc: sqlite3.Error) -> StorageUnavailable:
    """The client-facing fault for a database error, by SQLite's primary result code (never
    the driver's own text): ``SQLITE_BUSY_TIMEOUT`` is a busy database, ``SQLITE_FULL`` a full
    disk, and so on."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    primary = "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE -> SQLITE_IOERR
    if primary == "SQLITE_CANTOPEN":
        return StorageUnavailable("the database file is missing", retry_after=5)
    if primary == "SQLITE_FULL":
        return StorageUnavailable("the database disk is full", retry_after=5)
    if primary in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return StorageUnavailable("the database is busy")
    return StorageUnavailable("the database cannot be written", retry_after=5)


def check_database_file(path: Path, label: str) -> None:
    """Refuse (ValueError, naming ``label``) a database path that is a directory or a file
    other than an SQLite database; a missing or empty file is a new database."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # a new database; its directory is made when it is opened
    except OSError as exc:
        raise ValueError(f"cannot use {label} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{label} {path} is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{label} {path} is not a regular file")
    if info.st_size == 0:
        return  # SQLite makes an empty file a new database
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ValueError(f"cannot read {label} {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        raise ValueError(f"{label} {path} is not an SQLite database")


FileIdentity = tuple[int, int]


def file_identity(path: str | Path) -> FileIdentity | None:
    """Which file is at ``path`` now (device, inode); None when there is none.

    A connection keeps writing to the file it opened even after that file was deleted or
    replaced, so every write compares this before and after its COMMIT: a write to a file
    that is no longer the database is not acknowledged.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class WriteLock:
    """One writer at a time across processes, queued in the kernel, with a bounded wait.

    SQLite answers a second writer with SQLITE_BUSY and leaves the retry to a sleep loop; with
    two worker processes that loop showed p99 latencies near a second. A blocking ``flock`` on a
    file beside the database queues writers in the kernel instead. ``flock`` itself cannot time
    out, so a contended acquire waits for it on a helper thread, up to a deadline; if the
    caller gives up, the lock is handed straight back when it is granted.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.path = f"{db_path}.lock"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._mutex = threading.Lock()
        self._pending: Future[None] | None = None
        self._wanted = False
        self._closed = False

    def acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; False (and not held) when that ran out."""
        with self._mutex:
            if self._pending is None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pending = self._pending = Future()
                    pending.add_done_callback(self._granted)
                    # A daemon thread: one blocked in flock must not hold up interpreter exit.
                    threading.Thread(
                        target=self._flock, args=(pending,), name="flock", daemon=True
                    ).start()
            pending = self._pending
            self._wanted = True
        wait([pending], timeout)
        with self._mutex:
            self._wanted = False
            if pending.done() and self._pending is pending:
                self._pending = None
                pending.result()  # an OSError from flock surfaces here
                return True
        return False

    def _flock(self, pending: Future[None]) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            pending.set_exception(exc)
        else:
            pending.set_result(None)

    def _granted(self, pending: Future[None]) -> None:
        with self._mutex:
            if self._pending is pending and not self._wanted and not self._closed:
                # The acquirer gave up before the kernel granted the lock: give it back.
                self._pending = None
                if pending.exception() is None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def release(self) -> None:
        """Give the lock back."""
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (which also releases the lock)."""
        with self._mutex:
            self._closed = True
            os.close(self._fd)
