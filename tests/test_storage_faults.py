"""The database file removed or replaced under a running store: noticed, never papered over."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OPERATOR, rename, sync_store
from storage import NotFoundError, StorageUnavailable


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
