"""Group commit on one writer thread: every write the process makes, batched into shared COMMITs.

With ``synchronous=FULL`` every COMMIT waits for an fsync (1.5-5 ms on the machines measured),
so one COMMIT per request tops out at a few hundred writes a second. Here every write is a job
handed to one thread that owns the write connection. It takes every job queued so far, opens
one transaction (``BEGIN IMMEDIATE`` under the cross-process ``WriteLock``), runs each job in its
own savepoint (nested ``db.atomic()``: a rejected job rolls back alone), and COMMITs once. While
that COMMIT's fsync runs, new jobs queue up and form the next batch, so the batch size follows
the load by itself. A job's future is resolved only after its batch's COMMIT returned: an
answered write is on disk. If the COMMIT fails, every job of the batch fails with it.

Every wait is bounded and none runs on an event loop: a job that cannot start within
``wait_seconds`` of being submitted (the lock held by another process, a long batch ahead of it)
fails with ``StorageUnavailable`` without running, and SQLite's own busy wait is bounded by the
connection's ``busy_timeout``.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from storage.errors import StorageUnavailable
from storage.key_usage import KeyUsage
from storage.sqlite import keys
from storage.sqlite.connection import FileIdentity, WriteLock, file_identity, unavailable
from storage.store import StorageObserver

#: The writer connection checkpoints by itself only past this many WAL pages (about 40 MB): a
#: safety net in case the background checkpointer falls behind.
SAFETY_CHECKPOINT_PAGES = 10000
CHECKPOINT_INTERVAL_SECONDS = 0.2


@dataclass
class Job:
    """One write: ``fn(db)`` in a transaction (or, not ``transactional``, managing its own)."""

    fn: Callable[[Database], Any]
    deadline: float
    transactional: bool = True
    future: Future[Any] = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)


_STOP = object()
_FLUSH = object()


#: How often a failing writer tries a write of its own (see Writer.failing).
PROBE_INTERVAL_SECONDS = 1.0
#: Why a write failed, when it is someone else's write in progress rather than the database's
#: own state: the job could not start in time behind our own batches (BUSY) or behind another
#: process holding the write lock (HELD).
BUSY = "the database is busy"
HELD = "another writer holds the database"
TRANSIENT = frozenset({BUSY, HELD})
REPLACED = "the database file was removed or replaced"
CLOSED = "the store is closed"


class Writer:
    """The writer thread of one store; see the module docstring."""

    def __init__(
        self,
        path: Path,
        connect: Callable[[bool], Database],
        lock: WriteLock,
        wait_seconds: float,
        key_usage: KeyUsage,
        observers: list[StorageObserver] | None = None,
    ) -> None:
        self._path = path
        self._connect = connect
        self._lock = lock
        self.wait_seconds = wait_seconds
        self._key_usage = key_usage
        key_usage.on_full = lambda: self._queue.put(_FLUSH)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: Held to start the thread, to queue a job, and by ``close`` to mark the writer closed.
        self._started = threading.Lock()
        self._closed = False
        #: Batches committed and jobs in them, for the bench and the logs.
        self.commits = 0
        self.jobs = 0
        #: Told about each committed batch and each database fault (metrics).
        self.observers: list[StorageObserver] = [] if observers is None else observers
        #: When the write lock was last not had in time (another process held it throughout).
        self._lock_missed = float("-inf")
        #: Why the last write failed for a fault of the database itself (full, unwritable,
        #: removed), until a COMMIT succeeds again; None while writes commit. Meanwhile the
        #: thread probes once a second, so the store reports ready again by itself.
        self.failing: str | None = None

    def submit(self, fn: Callable[[Database], Any], *, transactional: bool = True) -> Future[Any]:
        """Queue ``fn(db)``; the future resolves after its COMMIT (or with its error). After
        ``close`` it fails at once with StorageUnavailable: no thread is left to answer it."""
        job = Job(fn, time.monotonic() + self.wait_seconds, transactional)
        with self._started:
            if self._closed:
                job.future.set_exception(StorageUnavailable(CLOSED, retry_after=5))
                return job.future
            self._start()
            self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Write what is queued and the pending key uses, then stop the thread."""
        with self._started:
            self._closed = True
            thread = self._thread
            if thread is not None:
                # Under the lock: every job submitted before this is queued ahead of _STOP.
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()

    # -- the thread ---------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the writer thread if it is not running yet (and the writer is not closed)."""
        if self._thread is None:
            with self._started:
                if not self._closed:
                    self._start()

    def _start(self) -> None:
        """Start the thread unless it runs; the caller holds ``_started``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        db: Database | None = None
        identity: FileIdentity | None = None
        checkpointer: Checkpointer | None = None
        first_open = True
        try:
            stopping = False
            while not stopping:
                timeout = self._key_usage.seconds_until_due()
                if self.failing is not None:
                    timeout = min(timeout, PROBE_INTERVAL_SECONDS)
                try:
                    batch = [self._queue.get(timeout=max(0.01, timeout))]
                except queue.Empty:
                    batch = []
                with contextlib.suppress(queue.Empty):
                    while True:
                        batch.append(self._queue.get_nowait())
                stopping = _STOP in batch
                jobs = [j for j in batch if isinstance(j, Job)]
                if db is not None and file_identity(self._path) != identity:
                    # The file was removed or replaced: this connection writes to a file no
                    # restart would find. Drop it (and the checkpointer's, which holds the old
                    # file open); the next batch reopens what is there now.
                    db.close()
                    db = None
                    if checkpointer is not None:
                        checkpointer.close()
                        checkpointer = None
                if db is None:
                    # Opened here, not before the loop: a database that cannot be opened (its
                    # folder gone, say) fails each batch's jobs instead of killing the thread.
                    try:
                        # Only the first open may create the file: a database removed under
                        # a running server must not come back empty.
                        db = self._connect(first_open)
                        identity = file_identity(self._path)
                        db.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
                    except sqlite3.Error as exc:
                        db = None
                        self._fail(jobs, unavailable(exc))
                        continue
                    first_open = False
                    if checkpointer is None:
                        checkpointer = Checkpointer(lambda: self._connect(False))
                touches = self._key_usage.take(force=stopping)
                if self.failing is not None and not jobs and not touches and not stopping:
                    self._probe(db, identity)
                    continue
                for job in (j for j in jobs if not j.transactional):
                    self._run_alone(db, job)
                together = [j for j in jobs if j.transactional]
                if (together or touches) and self._run_batch(db, together, touches, identity):
                    checkpointer.dirty.set()
        finally:
            if checkpointer is not None:
                checkpointer.close()
            if db is not None:
                db.close()

    def _fail(self, jobs: list[Job], error: StorageUnavailable) -> None:
        """Fail jobs not started yet."""
        self._fail_started([j for j in jobs if j.future.set_running_or_notify_cancel()], error)

    def _fail_started(self, jobs: list[Job], error: StorageUnavailable) -> None:
        """Fail started jobs with a database fault, telling the observers. Each job gets an
        exception of its own: one instance raised in many callers would share (and grow) one
        traceback."""
        if error.reason not in TRANSIENT:
            self.failing = error.reason
        for job in jobs:
            own = StorageUnavailable(error.reason, error.retry_after)
            own.__cause__ = error.__cause__
            job.future.set_exception(own)
            for observer in self.observers:
                observer.database_error(error.reason)

    def _startable(self, jobs: list[Job]) -> list[Job]:
        """Jobs still wanted and within their deadline; the late ones fail without running."""
        now = time.monotonic()
        live = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue  # the caller went away before it started
            if now > job.deadline:
                # Late because the writer waited out another process's lock meanwhile (for an
                # earlier batch, or a key-use flush), or behind our own batches.
                held = self._lock_missed >= job.submitted
                self._fail_started([job], StorageUnavailable(HELD if held else BUSY))
            else:
                live.append(job)
        return live

    def _take_lock(self, jobs: list[Job]) -> list[Job] | None:
        """Take the write lock for as long as the last job's deadline allows; the jobs still
        within their own deadline once it is held (None, all failed, when it was not)."""
        busy = StorageUnavailable(HELD)
        deadline = max((j.deadline for j in jobs), default=time.monotonic() + self.wait_seconds)
        if not self._lock.acquire(max(0.0, deadline - time.monotonic())):
            self._lock_missed = time.monotonic()
            self._fail_started(jobs, busy)
            return None
        now = time.monotonic()
        self._fail_started([j for j in jobs if now > j.deadline], busy)
        return [j for j in jobs if now <= j.deadline]

    def _run_batch(
        self,
        db: Database,
        jobs: list[Job],
        touches: dict[str, str],
        identity: FileIdentity | None,
    ) -> bool:
        jobs = self._startable(jobs)
        if not jobs and not touches:
            return False
        held = self._take_lock(jobs)
        if held is None:
            self._key_usage.put_back(touches)
            return False
        jobs = held
        started = time.monotonic()
        outcomes: list[tuple[Job, Any, BaseException | None]] = []
        try:
            # IMMEDIATE takes SQLite's write lock up front: a read-then-write transaction can
            # then never fail to upgrade (sqlite-utils' begin() is a deferred BEGIN).
            db.execute("BEGIN IMMEDIATE")
            for job in jobs:
                try:
                    with db.atomic():
                        outcomes.append((job, job.fn(db), None))
                except sqlite3.IntegrityError as exc:
                    outcomes.append((job, None, exc))  # this job's bug: a 500 for it alone
                except sqlite3.Error:
                    raise  # the database's fault (full, locked, gone): the batch fails
                except Exception as exc:
                    outcomes.append((job, None, exc))
            if touches:
                with db.atomic():
                    keys.touch(db, touches)
            db.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.rollback()
            error = unavailable(exc)
            error.__cause__ = exc
            self._fail_started(jobs, error)
            self._key_usage.put_back(touches)
            return False
        finally:
            self._lock.release()
        if file_identity(self._path) != identity:
            # Committed to a file that is no longer the database: not a write anyone may count
            # on, so nobody is told it succeeded.
            self._fail_started(jobs, StorageUnavailable(REPLACED, retry_after=5))
            return False
        self.commits += 1
        self.jobs += len(jobs)
        self.failing = None
        waits = [started - job.submitted for job in jobs]
        for observer in self.observers:
            observer.batch(len(jobs), waits)
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
        return True

    def _probe(self, db: Database, identity: FileIdentity | None) -> None:
        """While failing: one small real write; its COMMIT succeeding ends the failure."""
        if not self._lock.acquire(self.wait_seconds):
            self._lock_missed = time.monotonic()
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE write_probe SET probed_at = ? WHERE id = 1", [time.time()])
            db.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.rollback()
            self.failing = unavailable(exc).reason
            return
        finally:
            self._lock.release()
        if file_identity(self._path) == identity:
            self.failing = None

    def _run_alone(self, db: Database, job: Job) -> None:
        """A job that manages its own transactions (migrations), under the write lock."""
        if not self._startable([job]):
            return  # failed already (or cancelled): nothing to run
        held = self._take_lock([job])
        if held is None:
            return  # the lock was not had in time: failed
        if not held:
            self._lock.release()  # had, but past the job's deadline: failed
            return
        try:
            result = job.fn(db)
        except sqlite3.Error as exc:
            job.future.set_exception(unavailable(exc))
        except Exception as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
        finally:
            self._lock.release()


class Checkpointer:
    """Copies committed WAL frames into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1000 WAL pages: under a
    steady write load that COMMIT took 40-50 ms instead of 2, stalling every request of its
    batch and the ones queued behind it (the PATCH p99). A PASSIVE checkpoint from another
    connection does the same copying and fsyncs without blocking writers.
    """

    def __init__(self, connect: Callable[[], Database]) -> None:
        self._connect = connect
        self.dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = self._connect()
        try:
            while not self._stop.is_set():
                self.dirty.wait()
                if self._stop.wait(CHECKPOINT_INTERVAL_SECONDS):
                    break
                self.dirty.clear()
                with contextlib.suppress(sqlite3.Error):  # busy with another one: next time
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def close(self) -> None:
        """Stop the thread after its current checkpoint."""
        self._stop.set()
        self.dirty.set()
        self._thread.join(timeout=30)
