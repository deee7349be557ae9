"""The SQLite store's reader threads: a read costs one queue put and one wake-up of the loop.

``loop.run_in_executor`` costs 30-37 us of CPU per read on one core (a concurrent future
chained to an asyncio future, the executor's work item, queue and idle semaphore): more than
the SQLite read it carries. Here a read is a ``queue.SimpleQueue.put`` of the function, the
caller's loop and an asyncio future on the way in, and one ``loop.call_soon_threadsafe`` that
settles the future on the way back.

The threads start with the first read. A caller that stops waiting (a cancelled request, a
timed-out readiness probe) leaves the pool as it was: a read not yet started is skipped, and
the answer of one that ran is dropped. ``close`` refuses new reads and fails those not yet
started with ``StorageUnavailable``; the reads running finish, and the threads stop and are
joined within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from storage.errors import StorageUnavailable

T = TypeVar("T")
#: A read: the function to call, the loop waiting for it, the future it settles.
Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def closed() -> StorageUnavailable:
    """The fault of a read the store will not run: it is closing or closed."""
    return StorageUnavailable("the store is closed", retry_after=5)


class ReaderPool:
    """``size`` threads running functions for callers on any event loop; see the module
    docstring."""

    def __init__(self, size: int, *, name: str = "reader") -> None:
        if size < 1:
            raise ValueError("a reader pool needs at least one thread")
        self.size = size
        self._name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        #: Held while a read is queued and while ``close`` marks the pool closed: no read is
        #: queued after that, so none is left behind unanswered.
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a reader thread: its result, or the exception it raised. Raises
        StorageUnavailable once the pool is closing."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise closed()
            if not self._threads:
                self._start()
            self._queue.put((fn, loop, future))
        return await future

    def close(self, timeout: float) -> bool:
        """Refuse new reads, fail the queued ones with StorageUnavailable, let the running
        ones finish and join the threads, waiting at most ``timeout`` seconds in all. True when
        every thread has stopped. Closing again waits again for threads still running."""
        deadline = time.monotonic() + timeout
        with self._lock:
            first = not self._closed
            self._closed = True
            threads = list(self._threads)
        if first:
            self._fail_queued()
            for _ in threads:
                self._queue.put(None)  # one stop for each thread, behind nothing
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    # -- the threads --------------------------------------------------------------------------

    def _start(self) -> None:
        for index in range(self.size):
            thread = threading.Thread(target=self._serve, name=f"{self._name}_{index}")
            # Daemon, as the writer: a store never closed does not keep the process alive.
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            fn, loop, future = job
            if not future.cancelled():  # racy but harmless: at worst an answer is dropped
                try:
                    result = fn()
                except BaseException as exc:
                    _answer(loop, future, None, exc)
                else:
                    _answer(loop, future, result, None)
                    del result
            del job, fn, loop, future  # hold no caller's objects while waiting for the next

    def _fail_queued(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                _fn, loop, future = job
                _answer(loop, future, None, closed())


def _answer(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    """Settle ``future`` on its loop (from a reader thread); nobody waits when that loop is
    closed."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: its caller is gone
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the caller's loop: give the future its answer unless the caller stopped waiting."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
