"""When API keys were last used, batched off the request path.

A request only notes ``key id -> now`` in a dict (no I/O, no wait). The backend's writer takes
the whole dict every ``interval`` seconds and writes it in one transaction, so each used key
costs at most one UPDATE per interval, whatever its request rate: ``last_used_at`` is accurate
to ``interval`` (30 s by default). Memory is bounded: the dict holds at most the keys used in
one interval, and when it reaches ``max_pending`` entries the writer is asked to flush at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 30.0
DEFAULT_MAX_PENDING = 50_000


def _stamp(when: float) -> str:
    moment = dt.datetime.fromtimestamp(when, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class KeyUsage:
    """Key uses noted since the last flush; safe to note from one thread and take from another."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.interval = interval
        self.max_pending = max_pending
        self._used: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._last_flush = time.monotonic()
        #: Called (from the noting thread) when the dict is full; the writer wakes up.
        self.on_full: Callable[[], None] | None = None

    def note(self, key_id: str) -> None:
        """Remember that ``key_id`` was used now."""
        with self._mutex:
            new = key_id not in self._used
            self._used[key_id] = time.time()
            full = new and len(self._used) == self.max_pending
        if full and self.on_full is not None:
            self.on_full()

    def seconds_until_due(self) -> float:
        """How long until the next flush is due (0 when it is)."""
        return max(0.0, self._last_flush + self.interval - time.monotonic())

    def take(self, force: bool = False) -> dict[str, str]:
        """The uses to write (key id -> RFC 3339 time) if a flush is due, full or forced."""
        with self._mutex:
            due = force or len(self._used) >= self.max_pending or not self.seconds_until_due()
            if not due or not self._used:
                if due:
                    self._last_flush = time.monotonic()
                return {}
            used, self._used = self._used, {}
            self._last_flush = time.monotonic()
        return {key_id: _stamp(when) for key_id, when in used.items()}

    def put_back(self, used: dict[str, str]) -> None:
        """Keep uses whose write failed for the next flush (newer notes win)."""
        with self._mutex:
            for key_id, stamp in used.items():
                when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                self._used.setdefault(key_id, when)
