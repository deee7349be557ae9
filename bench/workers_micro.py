"""Per-call costs behind ``serve --workers N`` (README, "Workers"): best of 7 x 20,000 calls.

Usage: ``.venv/bin/python bench/workers_micro.py``. Runs itself once more with
PROMETHEUS_MULTIPROC_DIR set (prometheus-client picks multiprocess mode at first import), for
``Metrics.request`` in both modes; then the failed-authentication check every request makes
(``RateLimits.refused``) over the shared file table, over the in-memory table, and the check
it replaced (the ``limits`` library's in-memory ``test``), and counting one failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path


def best_us(call: Callable[[], object], number: int = 20_000) -> float:
    """Microseconds per call, best of 7 repeats."""
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def metrics(multiprocess: Path | None) -> None:
    """Print Metrics.request's cost with or without a multiprocess directory."""
    from handlers.http.metrics import Metrics

    m = Metrics(multiprocess)
    cost = best_us(lambda: m.request("v1", "get_organization", 200, 0.002))
    mode = "multiprocess (--workers N)" if multiprocess else "per-app registry"
    print(f"Metrics.request, {mode}: {cost:.2f} us")


def limits(tmp: Path) -> None:
    """Print the failed-authentication check's and counting's costs."""
    from limits import RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    from handlers.http.rate_limit import RateLimits

    shared, local = RateLimits(30, 0, tmp), RateLimits(30, 0, None)
    old, item = FixedWindowRateLimiter(MemoryStorage()), RateLimitItemPerMinute(30)
    print(f"refused(), shared file table: {best_us(lambda: shared.refused('127.0.0.1')):.2f} us")
    print(f"refused(), in-memory table: {best_us(lambda: local.refused('127.0.0.1')):.2f} us")
    replaced = best_us(lambda: old.test(item, "auth", "127.0.0.1"))
    print(f"the check it replaced (limits MemoryStorage test()): {replaced:.2f} us")
    count = best_us(lambda: shared.failed_authentication("10.1.1.1"))
    print(f"failed_authentication(), shared file table: {count:.2f} us")


def main() -> int:
    """Both measurements; the multiprocess one in a child process."""
    if len(sys.argv) > 1:  # the child: PROMETHEUS_MULTIPROC_DIR is set
        metrics(Path(sys.argv[1]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        metrics(None)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": tmp}
        subprocess.run([sys.executable, __file__, tmp], env=env, check=True)
        limits(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
