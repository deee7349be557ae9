"""Rate limits (the ``limits`` library, in memory: counters are per process).

- Failed authentications per client address: past ``auth_failures_per_minute`` in the current
  one-minute window, every request from that address is answered 429 until the window ends,
  so guessing keys or tokens costs a minute per batch of tries.
- Requests per API key (optional, off by default): past ``key_requests_per_minute`` in the
  current window, that key's requests are 429; while on, every answer to a key carries
  ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from handlers.errors import RateLimited


class RateLimits:
    """The process's rate-limit counters; see the module docstring."""

    def __init__(self, auth_failures_per_minute: int, key_requests_per_minute: int) -> None:
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        self._failures = (
            RateLimitItemPerMinute(auth_failures_per_minute) if auth_failures_per_minute else None
        )
        self._per_key = (
            RateLimitItemPerMinute(key_requests_per_minute) if key_requests_per_minute else None
        )

    def refused(self, address: str) -> RateLimited | None:
        """The 429 for an address past its failed-authentication limit (None: go ahead)."""
        if self._failures is None or self._limiter.test(self._failures, "auth", address):
            return None
        reset = self._limiter.get_window_stats(self._failures, "auth", address).reset_time
        return RateLimited(
            details="too many failed authentications from this address",
            headers={"Retry-After": str(_seconds_until(reset))},
        )

    def failed_authentication(self, address: str) -> None:
        """Count one refused credential from ``address``."""
        if self._failures is not None:
            self._limiter.hit(self._failures, "auth", address)

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
