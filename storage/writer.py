"""Group commit on the event loop: write transactions run inline, COMMIT runs on a helper thread.

With ``synchronous=FULL`` every commit waits for an fsync (about 1.5 ms on the machines we
measured), so one-commit-per-request writers top out near 650 commits/s, and 16 queued writers
see p99 latencies above 20 ms. A dedicated writer thread that batches commits fixes the fsync
count but not the latency: every SQLite call releases the GIL, and getting it back from a busy
event loop can take a whole switch interval (5 ms), several times per request.

So the request's read-check-write runs inline on the event loop thread, inside its own
SAVEPOINT of a transaction shared by every request that arrives before the next COMMIT; a
rejected request rolls back to its savepoint alone. Once a loop iteration passes with no new
job joining (or LINGER_SECONDS after the first), the COMMIT (the fsync, which needs no GIL)
runs on a helper thread while new write requests wait, without
blocking the loop, for the next transaction. A request is answered only after the COMMIT of its
batch has returned, so an answered write is on disk; if the COMMIT fails, every request in the
batch fails with it and none was answered as done. The cross-process WriteLock is held from
BEGIN to COMMIT, so worker processes (and the CLI) take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlite_utils import Database

from storage.db import WriteLock

T = TypeVar("T")


class GroupCommit:
    """Shared write transactions for one event loop; see the module docstring."""

    def __init__(self, connect: Callable[[], Database], lock: WriteLock) -> None:
        self._connect = connect
        self._lock = lock
        self._db: Database | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self._batch: asyncio.Future[None] | None = None
        self._committing = False
        self._commit_scheduled = False
        self._idle: asyncio.Event | None = None
        self._opening: asyncio.Lock | None = None
        #: Successful jobs so far; a request compares it before and after to know it wrote.
        self.jobs = 0
        #: When the open batch's COMMIT was first due, and the job count seen then.
        self._opened_at: float | None = None
        self._jobs_seen = 0
        self._checkpointer: Checkpointer | None = None

    # -- used by the HTTP layer ---------------------------------------------------------------

    def on_loop_thread(self) -> bool:
        """True when called on the event loop thread this committer serves."""
        return self._loop_thread == threading.get_ident()

    async def ready(self) -> None:
        """Wait (without blocking the loop) until a transaction is open for inline jobs."""
        if self._loop is None:
            self._bind()
        assert self._idle is not None and self._opening is not None
        while True:
            while self._committing:
                await self._idle.wait()
            if self._batch is not None:
                return
            async with self._opening:
                if self._batch is None and not self._committing:
                    await self._begin()

    @property
    def batch(self) -> asyncio.Future[None] | None:
        """The future of the open transaction's COMMIT."""
        return self._batch

    def run_job(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` now, in its own savepoint of the open transaction."""
        if self._batch is None or self._committing or not self.on_loop_thread():
            raise RuntimeError("no write transaction is open on this thread; await ready() first")
        assert self._db is not None
        conn = self._db.conn
        conn.execute("SAVEPOINT job")
        try:
            result = fn(self._db)
        except BaseException:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            self.schedule_commit()
            raise
        conn.execute("RELEASE job")
        self.jobs += 1
        self.schedule_commit()
        return result

    async def write_inline(self, call: Callable[[], T]) -> T:
        """Run ``call()`` (which may run jobs) in the open transaction; return after its COMMIT.

        ``call`` runs synchronously right after ``ready()``: no await separates them, so the
        transaction is still open. Durable before answered: when ``call`` ran a job, this waits
        for the batch's COMMIT, and a failed COMMIT raises here (the caller answers 500).
        """
        await self.ready()
        before = self.jobs
        try:
            result = call()
        finally:
            self.schedule_commit()
        if self.jobs != before and self._batch is not None:
            await self._batch
        return result

    def defer(self, fn: Callable[[Database], Any]) -> None:
        """Run ``fn`` in a coming transaction, without anyone waiting for it."""
        assert self._loop is not None

        async def job() -> None:
            await self.ready()
            self.run_job(fn)

        task = self._loop.create_task(job())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def schedule_commit(self) -> None:
        """COMMIT at the end of this loop iteration, so requests ready now share it."""
        if not self._commit_scheduled and self._loop is not None:
            self._commit_scheduled = True
            self._loop.call_soon(self._start_commit)

    def close(self) -> None:
        """Stop the commit thread and close the connection (after the loop has finished)."""
        self._committer.shutdown(wait=True)
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._db is not None:
            with contextlib.suppress(Exception):
                if self._db.conn.in_transaction:
                    self._db.conn.execute("ROLLBACK")
                    self._lock.release()
            self._db.close()
            self._db = None

    # -- internals ------------------------------------------------------------------------------

    def _bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._idle = asyncio.Event()
        self._idle.set()
        self._opening = asyncio.Lock()
        self._db = self._connect()
        # Checkpoints run beside the commits (see Checkpointer), not inside one of them.
        self._db.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
        self._checkpointer = Checkpointer(self._connect)

    async def _begin(self) -> None:
        assert self._loop is not None and self._db is not None
        if not self._lock.acquire(blocking=False):
            # Another process (or the CLI) is writing: wait for it on a thread, not the loop.
            taking = self._loop.run_in_executor(None, self._lock.acquire)
            try:
                await asyncio.shield(taking)
            except asyncio.CancelledError:
                # Nobody will use the lock once it is granted: hand it straight back.
                taking.add_done_callback(lambda f: f.cancelled() or self._lock.release())
                raise
        try:
            self._db.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        batch = self._loop.create_future()
        # Mark a failure as seen even when no request awaits it (deferred jobs only).
        batch.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._batch = batch

    def _start_commit(self) -> None:
        self._commit_scheduled = False
        batch = self._batch
        if batch is None or self._committing:
            return
        assert self._loop is not None and self._idle is not None
        if self._still_growing():
            self.schedule_commit()  # look again after the next loop iteration
            return
        self._committing = True
        self._idle.clear()
        self._batch = None
        done = self._loop.run_in_executor(self._committer, self._commit)
        done.add_done_callback(lambda f: self._finish(f, batch))

    def _still_growing(self) -> bool:
        """Whether to keep the open batch open one more loop iteration (see LINGER_SECONDS)."""
        assert self._loop is not None
        now = self._loop.time()
        if self._opened_at is None:
            self._opened_at, self._jobs_seen = now, self.jobs
            return True
        if self.jobs != self._jobs_seen and now - self._opened_at < LINGER_SECONDS:
            self._jobs_seen = self.jobs
            return True
        self._opened_at = None
        return False

    def _commit(self) -> None:
        assert self._db is not None
        conn = self._db.conn
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._lock.release()

    def _finish(self, done: asyncio.Future[None], batch: asyncio.Future[None]) -> None:
        assert self._idle is not None
        self._committing = False
        self._idle.set()
        error = done.exception()
        if error is not None:
            batch.set_exception(error)
        else:
            batch.set_result(None)
            if self._checkpointer is not None:
                self._checkpointer.dirty.set()


#: How long a batch's COMMIT may wait for writers that are still joining. Requests that arrive
#: together (16 clients answered by one COMMIT send their next requests together) reach the
#: transaction over several loop iterations, each after its own routing, auth and validation.
#: Committing after the first iteration split them into two batches per round trip: about 8
#: jobs per COMMIT under wrk, the late half waiting a whole extra COMMIT. Looking again after
#: each iteration while jobs keep joining (never longer than this) gave about 16 jobs per
#: COMMIT, half the fsyncs, and in three A/B pairs more requests/s and a lower p99 every time.
#: A batch nobody joins commits one loop iteration later than it would have.
LINGER_SECONDS = 0.001

#: The writer connection checkpoints by itself only past this many WAL pages (about 40 MB): a
#: safety net in case the background checkpointer falls behind.
SAFETY_CHECKPOINT_PAGES = 10000
CHECKPOINT_INTERVAL_SECONDS = 0.2


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
                with contextlib.suppress(Exception):  # busy with another checkpointer: next time
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def close(self) -> None:
        """Stop the thread after its current checkpoint."""
        self._stop.set()
        self.dirty.set()
        self._thread.join(timeout=30)
