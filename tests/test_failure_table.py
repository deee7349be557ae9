"""The failed-authentication table: shared through its file, windowed, bounded, never stalls."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from handlers.http.failure_table import LOCK_WAIT_SECONDS, SIZE, WINDOW_SECONDS, FailureTable

LIMIT = 3


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["file", "memory"])
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FailureTable, Clock]:
    """A table in a file and one in anonymous memory, each on a hand-moved clock."""
    path = tmp_path / "auth-failures" if request.param == "file" else None
    clock = Clock()
    made = FailureTable(path, clock=clock)
    request.addfinalizer(made.close)
    return made, clock


def fail(table: FailureTable, address: str, times: int) -> None:
    """``times`` failed authentications from ``address``."""
    for _ in range(times):
        table.count(address)


def test_refused_at_the_limit_until_the_window_ends(clocked) -> None:
    """Below the limit: go ahead; at it: refused for the rest of the window; after: again."""
    table, clock = clocked
    fail(table, "203.0.113.7", LIMIT - 1)
    assert table.seconds_left("203.0.113.7", LIMIT) is None
    table.count("203.0.113.7")
    clock.now += 10
    assert table.seconds_left("203.0.113.7", LIMIT) == pytest.approx(WINDOW_SECONDS - 10)
    assert table.seconds_left("203.0.113.8", LIMIT) is None
    clock.now += WINDOW_SECONDS
    assert table.seconds_left("203.0.113.7", LIMIT) is None
    fail(table, "203.0.113.7", LIMIT - 1)  # a new window counts from its own first failure
    assert table.seconds_left("203.0.113.7", LIMIT) is None


def test_processes_opening_one_file_share_the_counts(tmp_path: Path) -> None:
    """Failures counted through two openings of one file (two workers) add up."""
    first = FailureTable(tmp_path / "auth-failures")
    second = FailureTable(tmp_path / "auth-failures")
    fail(first, "198.51.100.1", LIMIT - 1)
    fail(second, "198.51.100.1", 1)
    assert first.seconds_left("198.51.100.1", LIMIT) is not None
    assert second.seconds_left("198.51.100.1", LIMIT) is not None
    first.close()
    second.close()


def test_a_flood_of_addresses_neither_grows_the_file_nor_frees_a_refused_one(
    tmp_path: Path,
) -> None:
    """200,000 addresses failing once each: the file keeps its size, and an address past the
    limit stays refused (evictions take the smallest counts)."""
    path = tmp_path / "auth-failures"
    table = FailureTable(path)
    fail(table, "192.0.2.1", LIMIT)
    for n in range(200_000):
        table.count(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
    assert path.stat().st_size == SIZE
    assert table.seconds_left("192.0.2.1", LIMIT) is not None
    table.close()


def test_a_held_lock_is_waited_for_a_bounded_time(tmp_path: Path) -> None:
    """A worker stopped while holding the lock stalls no one: the check needs no lock, and a
    failure is given up (uncounted) after a bounded wait."""
    path = tmp_path / "auth-failures"
    table = FailureTable(path)
    fail(table, "192.0.2.9", LIMIT)
    holder = os.open(path, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        assert table.seconds_left("192.0.2.9", LIMIT) is not None
        started = time.monotonic()
        table.count("192.0.2.10")
        # Generous for a loaded machine; the bound itself is LOCK_WAIT_SECONDS.
        assert time.monotonic() - started < 2 + LOCK_WAIT_SECONDS
    finally:
        os.close(holder)
    assert table.seconds_left("192.0.2.10", 1) is None
    table.count("192.0.2.10")
    assert table.seconds_left("192.0.2.10", 1) is not None
    table.close()


def test_a_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    """Another file at the path is never taken for a table."""
    path = tmp_path / "auth-failures"
    path.write_bytes(b"not a table")
    with pytest.raises(ValueError, match="not a failed-authentication table"):
        FailureTable(path)
