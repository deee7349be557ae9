"""The database file removed or replaced under a running store: noticed, never papered over."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import OPERATOR, rename, sync_store
from storage import NotFoundError, StorageUnavailable, open_store

#: About the SQLite file itself (its lock, WAL, disk and writer thread); see conftest.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def running(tmp_path: Path):
    """A store with an organization, written to and read from once (connections open)."""
    store = sync_store(tmp_path / "live.db", wait_seconds=0.5)
    org = store.create_org(name="Acme", actor=OPERATOR)
    rename(store, org["id"], "Acme 2")
    store.get_org(org["id"])
    yield store, org
    store.close()


def remove(path: Path) -> None:
    """Delete the database and its WAL files, as an operator's mistake would."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_removed_database_refuses_writes_and_reads_and_is_not_ready(running) -> None:
    """Writes and reads are StorageUnavailable, is_ready is False, and no file comes back."""
    store, org = running
    remove(store.path)
    with pytest.raises(StorageUnavailable):
        rename(store, org["id"], "Lost")
    with pytest.raises(StorageUnavailable):
        store.get_org(org["id"])
    assert store.is_ready() is False
    assert not store.path.exists()


def test_a_replaced_database_is_used_only_as_what_it_is(running, tmp_path: Path) -> None:
    """Another database copied over the path: writes go to it (and are there after a reopen),
    never to the file that was replaced."""
    store, org = running
    other = sync_store(tmp_path / "other.db")
    other_org = other.create_org(name="Restored", actor=OPERATOR)
    other.close()
    remove(store.path)
    shutil.copy(tmp_path / "other.db", store.path)
    with pytest.raises(NotFoundError):
        rename(store, org["id"], "Gone")  # the old organization is not in the new file
    assert rename(store, other_org["id"], "Restored 2")[0]["version"] == 2
    assert store.is_ready() is True
    reopened = sync_store(store.path)
    try:
        assert reopened.get_org(other_org["id"])["name"] == "Restored 2"
    finally:
        reopened.close()


def test_a_store_over_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    """Without ``create`` a missing database is refused and no file is made."""
    from storage import open_store

    path = tmp_path / "typo.db"
    with pytest.raises(StorageUnavailable):
        open_store(path, create=False)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 4 MiB tmpfs of its own (the test runs as root, as CI does), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of the disk with one file; returns it."""
    filler = disk / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_a_full_disk_refuses_writes_until_space_returns(tiny_disk: Path) -> None:
    """Disk full: writes StorageUnavailable and not ready; space back: ready again by itself
    (the writer probes), writes work, and what was acknowledged is all there."""
    store = sync_store(tiny_disk / "full.db", wait_seconds=0.5)
    try:
        org = store.create_org(name="Acme", actor=OPERATOR)
        rename(store, org["id"], "Before")
        filler = fill(tiny_disk)
        assert store.is_ready() is False  # no room: not ready before any write fails
        with pytest.raises(StorageUnavailable, match="full"):
            rename(store, org["id"], "Lost " + "x" * 90)
        assert store.is_ready() is False
        filler.unlink()
        deadline = time.monotonic() + 5
        while not store.is_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.is_ready() is True
        assert rename(store, org["id"], "After")[0]["version"] == 3
    finally:
        store.close()
    reopened = sync_store(tiny_disk / "full.db")
    try:
        assert reopened.get_org(org["id"])["name"] == "After"
        assert reopened.verify_audit()["broken"] is None
    finally:
        reopened.close()


# -- regressions found in review: every wait bounded per request, faults counted per request --


def test_reads_queued_behind_a_locked_database_are_bounded_too(tmp_path: Path) -> None:
    """Another program holding SQLite exclusively: 16 concurrent reads (4 reader threads) all
    fail within about one bound, not one bound per wave of four."""
    path = tmp_path / "locked.db"
    first = sync_store(path)
    org = first.create_org(name="Acme", actor=OPERATOR)
    first.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE write_probe SET probed_at = 'held'")
        other.execute("COMMIT")  # the exclusive lock stays with this connection
        store = open_store(path, wait_seconds=0.5, create=False)

        async def read_all() -> list[float]:
            started = time.monotonic()

            async def one() -> float:
                with pytest.raises(StorageUnavailable):
                    await store.get_org(org["id"])
                return time.monotonic() - started

            times = await asyncio.gather(*(one() for _ in range(16)))
            await store.close()
            return times

        assert max(asyncio.run(read_all())) < 1.5


def test_a_write_waits_its_own_bound_not_the_earliest_in_its_batch(tmp_path: Path) -> None:
    """The lock held elsewhere until t=0.6 s, bound 0.5 s: a write joining at t=0.3 s
    succeeds although an earlier one in the queue was past its bound."""
    path = tmp_path / "batch.db"
    store = open_store(path, wait_seconds=0.5)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    async def scenario() -> list[str]:
        await store.migrate()
        org = await store.create_org(name="Acme", actor=OPERATOR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        threading.Timer(0.6, lambda: fcntl.flock(fd, fcntl.LOCK_UN)).start()

        async def write(delay: float) -> str:
            await asyncio.sleep(delay)
            try:
                await store.modify_org(
                    org["id"],
                    lambda o: ({**o, "name": f"At {delay}"}, None),
                    actor=OPERATOR,
                    surface="cli",
                    request_id=None,
                )
            except StorageUnavailable:
                return "503"
            return "200"

        results = await asyncio.gather(write(0.0), write(0.02), write(0.3))
        await store.close()
        return results

    try:
        results = asyncio.run(scenario())
    finally:
        os.close(fd)
    assert results[2] == "200"
    assert results[0] == "503"


class Counting:
    """A storage observer counting database errors."""

    def __init__(self) -> None:
        self.errors = 0

    def batch(self, size: int, waits: list[float]) -> None:
        """Not counted here."""

    def database_error(self, reason: str) -> None:
        """One per failed request."""
        self.errors += 1


def test_every_failed_request_is_one_database_error(tmp_path: Path) -> None:
    """Ten writes failed together by a held lock are ten database errors, not one per batch."""
    path = tmp_path / "count.db"
    store = open_store(path, wait_seconds=0.3)
    counting = Counting()
    store.add_observer(counting)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    async def scenario() -> int:
        await store.migrate()
        org = await store.create_org(name="Acme", actor=OPERATOR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        calls = [
            store.modify_org(
                org["id"],
                lambda o, n=n: ({**o, "name": f"N{n}"}, None),
                actor=OPERATOR,
                surface="cli",
                request_id=None,
            )
            for n in range(10)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        await store.close()
        return sum(isinstance(r, StorageUnavailable) for r in results)

    try:
        failed = asyncio.run(scenario())
    finally:
        os.close(fd)
    assert failed == 10
    assert counting.errors == 10


def test_the_writer_keeps_no_replaced_database_open(tmp_path: Path) -> None:
    """After the file is replaced and written to, neither the writer's connection nor its
    checkpointer's holds the old file open (a restored backup frees the old one's space)."""
    store = sync_store(tmp_path / "live.db")
    org = store.create_org(name="Acme", actor=OPERATOR)  # writes only: no reader connection
    rename(store, org["id"], "Before")
    with (
        contextlib.closing(sqlite3.connect(store.path)) as source,
        contextlib.closing(sqlite3.connect(tmp_path / "backup.db")) as backup,
    ):
        source.backup(backup)  # a consistent copy, WAL included, as sqlite3 .backup makes
    remove(store.path)
    shutil.copy(tmp_path / "backup.db", store.path)
    for n in range(3):
        rename(store, org["id"], f"Restored {n}")
    held = [f for f in open_files() if str(store.path) in f and "(deleted)" in f]
    store.close()
    assert held == []


def open_files() -> list[str]:
    """What this process's file descriptors point at now."""
    targets = []
    for link in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed while listing
            targets.append(os.readlink(link))
    return targets
