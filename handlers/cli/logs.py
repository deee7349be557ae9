"""Logging for ``orgsettings serve``: one JSON object per line on stderr."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TextIO

from handlers.http.log_format import JsonLineFormatter


class TurnBatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes the lines of one event-loop turn in one write.

    On a thread running an event loop, a record's line is kept and one flush is scheduled
    (``loop.call_soon``): the lines every request of that turn logs go out together, right
    after the turn. Issue 20 measured a write and flush per access-log line at about 60 us of
    a PATCH's CPU on one core: the write releases the GIL, and the loop waits to get it back
    from the writer thread. Off a loop (the writer thread, start-up), or on a second loop while
    a turn's lines wait, a record is written at once, after the lines kept, as StreamHandler
    writes it. What is kept is written on ``flush``, which ``logging.shutdown`` calls at exit.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._kept: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the line until the loop's turn ends; write it now when not on a loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._loop not in (None, loop):
            self.flush()  # the lines kept are older: they go first
            super().emit(record)
            return
        try:
            self._kept.append(self.format(record) + self.terminator)
        except Exception:  # as StreamHandler.emit: a bad record must not take the request down
            self.handleError(record)
            return
        if self._loop is None:
            self._loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines kept, in one write, and flush the stream."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._loop = None
            if self._kept:
                text = "".join(self._kept)
                self._kept.clear()
                self.stream.write(text)
            super().flush()


def configure_logging() -> None:
    """The access log and errors as JSON lines; Connexion's per-request warnings quiet."""
    handler = TurnBatchedStreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("orgsettings")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    # The server's own warnings (Granian: bind failures, worker restarts) are Granian's to log,
    # at the level `serve` passes it (log_level=warning).
    # The logging HOWTO's "Optimization" knobs: the log lines carry none of this.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Connexion logs a warning on every 4xx and on every request to an operation that accepts
    # two media types (PATCH /v1/organization); our own error handler logs what matters.
    logging.getLogger("connexion").setLevel(logging.ERROR)
