"""Rate limits: failed authentications per address (shared by the workers of one ``serve``),
requests per API key (the ``limits`` library, in memory: per worker process).

- Failed authentications per client address: past ``auth_failures_per_minute`` in the current
  one-minute window, every request from that address is answered 429 until the window ends,
  so guessing keys or tokens costs a minute per batch of tries. The counts are a
  ``FailureTable``: in the directory ``serve --workers N`` shares with its workers, so the
  limit holds for the instance whichever worker a try reaches; else in the process's memory.
- Requests per API key (optional, off by default): past ``key_requests_per_minute`` in the
  current window, that key's requests are 429; while on, every answer to a key carries
  ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds). Counted per
  worker process: with N workers a key gets up to N times its limit (README, "Configuration").
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from handlers.errors import RateLimited
from handlers.http.failure_table import FailureTable

#: The failed-authentication table's file in the directory ``serve`` shares with its workers.
FAILURE_TABLE_FILE = "auth-failures"


class RateLimits:
    """The app's rate-limit counters; see the module docstring."""

    def __init__(
        self,
        auth_failures_per_minute: int,
        key_requests_per_minute: int,
        workers_dir: Path | None = None,
    ) -> None:
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._failure_limit = auth_failures_per_minute
        self._failures = None
        if auth_failures_per_minute:
            table = workers_dir / FAILURE_TABLE_FILE if workers_dir is not None else None
            self._failures = FailureTable(table)
        self._per_key = (
            RateLimitItemPerMinute(key_requests_per_minute) if key_requests_per_minute else None
        )

    def refused(self, address: str) -> RateLimited | None:
        """The 429 for an address past its failed-authentication limit (None: go ahead)."""
        if self._failures is None:
            return None
        left = self._failures.seconds_left(address, self._failure_limit)
        if left is None:
            return None
        return RateLimited(
            details="too many failed authentications from this address",
            headers={"Retry-After": str(max(1, math.ceil(left)))},
        )

    def failed_authentication(self, address: str) -> None:
        """Count one refused credential from ``address``."""
        if self._failures is not None:
            self._failures.count(address)

    def key_request(self, key_id: str) -> dict[str, str]:
        """Count one request of an API key: its RateLimit-* headers, or raise RateLimited."""
        if self._per_key is None:
            return {}
        allowed = self._limiter.hit(self._per_key, "key", key_id)
        stats = self._limiter.get_window_stats(self._per_key, "key", key_id)
        reset = str(_seconds_until(stats.reset_time))
        headers = {
            "RateLimit-Limit": str(self._per_key.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": reset,
        }
        if not allowed:
            raise RateLimited(
                details="too many requests for this API key",
                headers={**headers, "Retry-After": reset},
            )
        return headers


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))
