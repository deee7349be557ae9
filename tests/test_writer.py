"""storage.sqlite.writer and friends: group commit, bounded waits, the write lock, key usage."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from conftest import OPERATOR, sync_store
from storage import StorageUnavailable, open_store
from storage.key_usage import KeyUsage
from storage.records import By, planned_change
from storage.sqlite import audit, organizations
from storage.sqlite.connection import WriteLock, connect
from storage.sqlite.writer import Writer

#: About the SQLite file itself (its lock, WAL, disk and writer thread); see conftest.
pytestmark = pytest.mark.sqlite_only

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Where this test's fresh database lives (the org_id fixture migrates it)."""
    return tmp_path / "writer.db"


@pytest.fixture
def org_id(path: Path) -> str:
    """The id of an organization named "Start", at version 1, in the migrated database."""
    seeding = sync_store(path)
    org = seeding.create_org(name="Start", actor=OPERATOR)
    seeding.close()
    return org["id"]


@pytest.fixture
def new_writer(path: Path) -> Iterator[Callable[..., Writer]]:
    """Make writers over the database (as SqliteStore does); all are closed after the test."""
    made: list[tuple[Writer, WriteLock]] = []

    def make(wait_seconds: float = 5.0) -> Writer:
        lock = WriteLock(path)
        writer = Writer(
            path,
            lambda first: connect(path, wait_seconds, create=first),
            lock,
            wait_seconds,
            KeyUsage(),
        )
        made.append((writer, lock))
        return writer

    yield make
    for writer, lock in made:
        writer.close()
        lock.close()


def named(name: str) -> Callable[[dict[str, Any]], tuple[dict[str, Any], None]]:
    """A mutator renaming the organization."""
    return lambda org: ({**org, "name": name}, None)


def rename(org_id: str, name: str) -> Callable[[Any], Any]:
    """A job renaming the organization, as modify_org submits it."""
    plan = partial(planned_change, mutate=named(name), if_version=None)
    return lambda db: organizations.modify(db, org_id, plan, By(OPERATOR, "v1", name))


def state(path: Path, org_id: str) -> tuple[str, int, list[str], int]:
    """Name, version and event types of the organization, and how many brands exist."""
    with closing(connect(path, 5.0)) as db:
        org = organizations.read(db, org_id)
        events, _ = audit.page(db, org_id, limit=100, before_seq=None)
        brands = db.execute("SELECT COUNT(*) FROM brands").fetchone()[0]
    return org["name"], org["version"], [e["type"] for e in events], brands


@contextmanager
def busy(writer: Writer) -> Iterator[None]:
    """Keep the writer thread inside a job, so every job submitted meanwhile joins one batch."""
    started, release = threading.Event(), threading.Event()

    def block(_db: Any) -> None:
        started.set()
        release.wait(10)

    blocker = writer.submit(block)
    assert started.wait(10)
    try:
        yield
    finally:
        release.set()
        blocker.result(10)


def hold_lock_file(path: Path) -> int:
    """Take the database's write lock as another process would; returns the descriptor."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def try_lock(fd: int) -> bool:
    """Take the lock on ``fd`` if nobody holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def failures(futures: list[Future[Any]]) -> list[type[BaseException] | None]:
    """The exception type each future ended with (None for a result), waiting at most 10 s."""
    return [type(f.exception(10)) if f.exception(10) else None for f in futures]


# -- group commit -------------------------------------------------------------------------------


def test_jobs_queued_together_share_one_commit(new_writer, path, org_id):
    """Sixteen writes submitted from four threads while a batch runs: each lands with its own
    event, all sixteen in one COMMIT."""
    writer = new_writer()
    submitted: list[list[Future[Any]]] = [[] for _ in range(4)]

    def submit_four(thread: int) -> None:
        submitted[thread].extend(writer.submit(rename(org_id, f"t{thread}-{i}")) for i in range(4))

    with busy(writer):
        threads = [threading.Thread(target=submit_four, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    results = [f.result(10) for group in submitted for f in group]
    assert sorted(org["version"] for org, _ in results) == list(range(2, 18))
    names = sorted(f"t{t}-{i}" for t in range(4) for i in range(4))
    assert sorted(event["request_id"] for _, event in results) == names
    assert state(path, org_id)[2] == ["organization.updated"] * 16 + ["organization.created"]
    assert (writer.commits, writer.jobs) == (2, 17)  # the busy job's batch, then all sixteen
    assert writer.commits < writer.jobs


def test_a_rejected_job_rolls_back_alone(new_writer, path, org_id):
    """A job that raises after writing leaves the other jobs of its batch committed."""
    writer = new_writer()

    def rename_then_reject(db: Any) -> None:
        rename(org_id, "Bad")(db)
        raise ValueError("rule violated")

    with busy(writer):
        rejected = writer.submit(rename_then_reject)
        accepted = writer.submit(rename(org_id, "Good"))
    with pytest.raises(ValueError, match="rule violated"):
        rejected.result(10)
    assert accepted.result(10)[0]["version"] == 2
    assert state(path, org_id) == ("Good", 2, ["organization.updated", "organization.created"], 0)
    assert writer.commits == 2  # both jobs were in one batch


def test_a_failed_commit_fails_every_job_of_the_batch(new_writer, path, org_id):
    """If COMMIT fails, no job of the batch is told it succeeded and nothing is kept."""
    writer = new_writer()

    def dangling_brand(db: Any) -> None:
        # A deferred foreign key is only checked at COMMIT, which then fails.
        db.execute("PRAGMA defer_foreign_keys = ON")
        db.execute(
            "INSERT INTO brands (id, organization_id, status, campaign_count, created_at)"
            " VALUES ('b', 'no-such-org', 'ACTIVE', 0, '2026-01-01T00:00:00Z')"
        )

    with busy(writer):
        batch = [writer.submit(rename(org_id, f"n{i}")) for i in range(3)]
        batch.append(writer.submit(dangling_brand))
    assert failures(batch) == [StorageUnavailable] * 4
    assert state(path, org_id) == ("Start", 1, ["organization.created"], 0)
    assert writer.commits == 1  # only the busy job's batch


def test_each_job_of_a_failed_batch_gets_an_exception_of_its_own(new_writer, path, org_id):
    """Regression (issue 17): one StorageUnavailable instance was raised into every waiter
    of a failed batch, so their tracebacks grew on one shared object."""
    writer = new_writer()
    with busy(writer):
        batch = [writer.submit(rename(org_id, f"n{i}")) for i in range(3)]
        batch.append(writer.submit(lambda db: db.execute("PRAGMA defer_foreign_keys = ON")))
        batch.append(writer.submit(lambda db: db.execute("DELETE FROM organizations")))
    errors = [f.exception(10) for f in batch]
    assert all(isinstance(e, StorageUnavailable) for e in errors)
    assert len({id(e) for e in errors}) == len(batch)


def test_a_database_locked_by_another_program_fails_writes_in_bounded_time(
    new_writer, path, org_id
):
    """While another program holds SQLite's write lock, jobs fail after the bounded wait."""
    writer = new_writer(wait_seconds=0.3)
    writer.submit(lambda db: None).result(10)  # connected before the database is locked
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        jobs = [writer.submit(rename(org_id, f"n{i}")) for i in range(3)]
        assert failures(jobs) == [StorageUnavailable] * 3
        elapsed = time.monotonic() - started
        other.execute("ROLLBACK")
    assert elapsed < 0.3 + 2
    assert state(path, org_id) == ("Start", 1, ["organization.created"], 0)
    assert writer.submit(rename(org_id, "After")).result(10)[0]["version"] == 2


def test_a_job_kept_waiting_past_wait_seconds_fails_without_running(new_writer):
    """A job whose deadline passes while the batch ahead runs fails with StorageUnavailable."""
    writer = new_writer(wait_seconds=0.2)
    ran = threading.Event()
    with busy(writer):
        late = writer.submit(lambda db: ran.set())
        time.sleep(0.3)  # the batch ahead outlasts the late job's deadline
    assert failures([late]) == [StorageUnavailable]
    assert not ran.is_set()


def test_closing_the_writer_writes_what_is_queued(new_writer, path, org_id):
    """close() returns only after the jobs queued before it are committed."""
    writer = new_writer()
    with busy(writer):
        queued = writer.submit(rename(org_id, "Queued"))
        closer = threading.Thread(target=writer.close)
        closer.start()
    closer.join(timeout=10)
    assert queued.result(0)[0]["version"] == 2
    assert state(path, org_id)[:2] == ("Queued", 2)


def test_a_write_after_close_fails_at_once_instead_of_waiting_forever(new_writer, path, org_id):
    """A job submitted once the writer is closed has no thread to answer it: it fails with
    StorageUnavailable right away and writes nothing (it used to wait forever)."""
    writer = new_writer()
    writer.submit(rename(org_id, "Before")).result(10)
    writer.close()
    late = writer.submit(rename(org_id, "After"))
    assert failures([late]) == [StorageUnavailable]
    assert state(path, org_id)[0] == "Before"


# -- the cross-process write lock ---------------------------------------------------------------


def test_a_write_blocked_by_another_process_fails_within_wait_seconds(path, org_id):
    """A write that cannot take the lock file fails in time; the store works once it is free."""
    store = sync_store(path, wait_seconds=0.5)
    modify = partial(store.modify_org, org_id, actor=OPERATOR, surface="v1", request_id=None)
    fd = hold_lock_file(path)
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            modify(named("Blocked"))
        assert time.monotonic() - started < 0.5 + 2
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert modify(named("After"))[0]["version"] == 2
    finally:
        os.close(fd)
        store.close()


def test_write_lock_acquire_gives_up_in_time_when_held_elsewhere(path):
    """acquire(timeout) returns False in time while another holds the lock, True after."""
    lock = WriteLock(path)
    fd = hold_lock_file(path)
    try:
        started = time.monotonic()
        assert lock.acquire(0.2) is False
        assert time.monotonic() - started < 0.2 + 1
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert lock.acquire(5) is True
        lock.release()
    finally:
        os.close(fd)
        lock.close()


def test_an_abandoned_lock_wait_hands_the_lock_back(path):
    """After a timed-out acquire, the lock granted later is released for other processes."""
    lock = WriteLock(path)
    fd = hold_lock_file(path)
    other = os.open(f"{path}.lock", os.O_RDWR)
    try:
        assert lock.acquire(0.1) is False
        fcntl.flock(fd, fcntl.LOCK_UN)
        deadline = time.monotonic() + 1.0
        while not try_lock(other):
            assert time.monotonic() < deadline, "the abandoned waiter kept the lock"
            time.sleep(0.01)
    finally:
        os.close(other)
        os.close(fd)
        lock.close()


# -- key usage ----------------------------------------------------------------------------------


def test_key_usage_is_not_taken_before_the_interval_passes():
    """A noted use waits for its interval: take() is empty until then."""
    usage = KeyUsage(interval=60)
    usage.note("key_a")
    assert usage.take() == {}


@pytest.mark.parametrize(("interval", "force"), [(60, True), (0, False)], ids=["forced", "due"])
def test_key_usage_take_returns_the_uses_as_rfc3339_times(interval, force):
    """A forced or due take() returns every noted key with its time of use, in RFC 3339 UTC."""
    usage = KeyUsage(interval=interval)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    usage.note("key_a")
    usage.note("key_b")
    taken = usage.take(force=force)
    assert sorted(taken) == ["key_a", "key_b"]
    for stamp in taken.values():
        assert RFC3339_MS.fullmatch(stamp)
        assert before <= dt.datetime.fromisoformat(stamp) <= dt.datetime.now(dt.UTC)
    assert usage.take(force=True) == {}


def test_key_usage_reaching_max_pending_asks_for_a_flush_once():
    """The max_pending-th distinct key calls on_full once, and makes the uses due."""
    usage = KeyUsage(interval=60, max_pending=3)
    calls: list[None] = []
    usage.on_full = lambda: calls.append(None)
    for key in ("key_a", "key_b"):
        usage.note(key)
    assert calls == []
    usage.note("key_c")
    usage.note("key_d")
    assert len(calls) == 1
    assert sorted(usage.take()) == ["key_a", "key_b", "key_c", "key_d"]


def test_key_usage_put_back_keeps_newer_notes():
    """Uses put back after a failed write come back, unless the key was noted again since."""
    usage = KeyUsage(interval=60)
    old = "2020-01-01T00:00:00.000Z"
    usage.note("key_a")
    usage.put_back({"key_a": old, "key_b": old})
    taken = usage.take(force=True)
    assert taken["key_b"] == old
    assert taken["key_a"] > old


# -- faults -------------------------------------------------------------------------------------


def test_a_store_whose_database_cannot_be_opened_fails_writes_in_bounded_time(tmp_path):
    """A write whose connection cannot be opened fails with StorageUnavailable, not a hang."""
    folder = tmp_path / "gone"
    store = open_store(folder / "orgsettings.db", wait_seconds=0.5)
    shutil.rmtree(folder)  # the disk was unmounted, the directory removed...
    try:
        with pytest.raises(StorageUnavailable):
            asyncio.run(asyncio.wait_for(store.create_org(name="Acme", actor=OPERATOR), 2))
    finally:
        asyncio.run(store.close())
