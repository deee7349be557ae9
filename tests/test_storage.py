"""storage/: migrations, connection pragmas, atomic writes, and concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import OPERATOR
from storage import Store
from storage.db import latest_version, schema_version
from storage.migrations import MIGRATIONS


@pytest.fixture(params=[False, True], ids=["direct", "group-commit"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store over a fresh database, writing directly (CLI) or group-committed."""
    fresh = Store(tmp_path / "storage.db", group_commit=request.param)
    fresh.migrate()
    yield fresh
    fresh.close()


def snapshot(store: Store, org_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The org record and its whole audit trail."""
    return store.get_org(org_id), store.list_events(org_id, limit=1000)[0]


def modify(store: Store, org_id: str, mutate: Callable, surface: str = "cli"):
    """modify_org as the operator, without a request id."""
    return store.modify_org(org_id, mutate, actor=OPERATOR, surface=surface, request_id=None)


def schema(store: Store) -> list[tuple[str, str]]:
    """Every table, index and trigger definition."""
    return list(store.db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall())


# -- migrations ---------------------------------------------------------------------------------


def test_migrate_brings_a_new_database_to_the_latest_version(tmp_path):
    """A new database ends at user_version == number of migrations."""
    fresh = Store(tmp_path / "new.db")
    try:
        assert schema_version(fresh.db) == 0
        assert fresh.migrate() == latest_version() == len(MIGRATIONS)
        assert fresh.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert fresh.is_ready()
    finally:
        fresh.close()


def test_migrate_again_is_a_no_op(store, org):
    """Re-running migrations changes neither the schema nor the data."""
    before_schema, before_data = schema(store), snapshot(store, org["id"])
    assert store.migrate() == latest_version()
    assert (schema(store), snapshot(store, org["id"])) == (before_schema, before_data)


def test_migrate_from_another_store_on_the_same_file_is_a_no_op(tmp_path, store, org):
    """A second process starting on a migrated database leaves it as it is."""
    before = schema(store)
    second = Store(store.path)
    try:
        assert second.migrate() == latest_version()
        assert schema(second) == before
        assert second.get_org(org["id"]) == store.get_org(org["id"])
    finally:
        second.close()


def test_unmigrated_database_is_not_ready(tmp_path):
    """/readyz's check fails until the schema is current."""
    fresh = Store(tmp_path / "unmigrated.db")
    try:
        assert fresh.is_ready() is False
    finally:
        fresh.close()


# -- connection pragmas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("synchronous", 2), ("foreign_keys", 1)],
)
@pytest.mark.parametrize("where", ["main-thread", "worker-thread"])
def test_every_connection_has_the_durability_pragmas(store, pragma, expected, where):
    """WAL, synchronous=FULL and foreign keys on, for every thread's connection."""
    seen: list[Any] = []

    def read() -> None:
        seen.append(store.db.execute(f"PRAGMA {pragma}").fetchone()[0])

    if where == "main-thread":
        read()
    else:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    assert seen == [expected]


def test_foreign_keys_are_enforced(store):
    """A brand for an organization that does not exist is refused by the database."""
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute(
            "INSERT INTO brands (id, organization_id, status, campaign_count, created_at)"
            " VALUES ('b', 'no-such-org', 'ACTIVE', 0, '2026-01-01T00:00:00Z')"
        )


# -- modify_org is all or nothing ---------------------------------------------------------------


class Refused(Exception):
    """Raised by a mutator to reject a change."""


def test_mutate_raising_changes_nothing(store, org):
    """When the mutator raises, the error propagates and no row or event is written."""
    before = snapshot(store, org["id"])

    def mutate(current: dict[str, Any]) -> tuple[dict[str, Any], None]:
        current["name"] = "Half-done"
        raise Refused

    with pytest.raises(Refused):
        modify(store, org["id"], mutate)
    assert snapshot(store, org["id"]) == before


def test_failed_event_write_rolls_back_the_row_change(store, org):
    """If the audit event cannot be written, the organization update is undone too."""
    before = snapshot(store, org["id"])
    with pytest.raises(sqlite3.IntegrityError):
        # surface is CHECK-constrained: the row update succeeds, the event insert fails.
        modify(store, org["id"], lambda o: ({**o, "name": "Orphan"}, None), surface="nowhere")
    assert snapshot(store, org["id"]) == before


def test_row_that_breaks_a_constraint_changes_nothing(store, org):
    """A record the database refuses (mms above message retention) writes nothing."""
    before = snapshot(store, org["id"])
    with pytest.raises(sqlite3.IntegrityError):
        modify(store, org["id"], lambda o: ({**o, "mms_retention_days": 200}, None))
    assert snapshot(store, org["id"]) == before


def test_store_keeps_working_after_a_rolled_back_write(store, org):
    """A rejected write releases the write lock and the transaction."""
    with pytest.raises(Refused):
        modify(store, org["id"], lambda o: (_ for _ in ()).throw(Refused()))
    updated, event = modify(store, org["id"], lambda o: ({**o, "name": "After"}, None))
    assert (updated["name"], updated["version"]) == ("After", 2)
    assert event is not None


def test_change_and_event_are_committed_together(store, org):
    """An effective change bumps the version by one and writes one event with its diff."""
    updated, event = modify(store, org["id"], lambda o: ({**o, "is_reseller": True}, None))
    org_after, trail = snapshot(store, org["id"])
    assert org_after == updated
    assert updated["version"] == org["version"] + 1
    assert trail[0] == event
    assert event["changes"] == {"is_reseller": {"from": False, "to": True}}
    assert event["created_at"] == updated["updated_at"]  # one instant for change and record


def test_mutate_returning_the_same_record_writes_nothing(store, org):
    """A no-op mutation returns no event and keeps the version."""
    before = snapshot(store, org["id"])
    _, event = modify(store, org["id"], lambda o: (o, None))
    assert event is None
    assert snapshot(store, org["id"]) == before


# -- concurrent writers -------------------------------------------------------------------------

#: Eight independent changes: (dotted path, function that applies it to a record, new value).
CHANGES: list[tuple[str, Callable[[dict[str, Any]], None], Any]] = [
    ("name", lambda o: o.update(name="Renamed"), "Renamed"),
    ("billing_email", lambda o: o.update(billing_email="ap@acme.example"), "ap@acme.example"),
    ("message_retention_days", lambda o: o.update(message_retention_days=120), 120),
    ("mms_retention_days", lambda o: o.update(mms_retention_days=14), 14),
    ("is_reseller", lambda o: o.update(is_reseller=True), True),
    ("quiet_hours.start", lambda o: o["quiet_hours"].update(start="22:00"), "22:00"),
    (
        "auto_replies.help_text",
        lambda o: o["auto_replies"].update(help_text="Call us."),
        "Call us.",
    ),
    ("contact_protection_period", lambda o: o.update(contact_protection_period=48), 48),
]


def _lookup(org: dict[str, Any], path: str) -> Any:
    value: Any = org
    for part in path.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize("stores", [1, 2], ids=["one-store", "two-stores"])
def test_concurrent_changes_never_lose_an_update(store, org, stores):
    """Eight threads each changing a different field: every change lands, one event each.

    With two stores on one file the threads also contend through the file lock, as two
    server processes would.
    """
    group_commit = store.group is not None
    pool = [store] + [Store(store.path, group_commit=group_commit) for _ in range(stores - 1)]
    barrier = threading.Barrier(len(CHANGES))
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        _, apply, _ = CHANGES[index]

        def mutate(current: dict[str, Any]) -> tuple[dict[str, Any], None]:
            apply(current)
            time.sleep(0.01)  # widen the read-modify-write window a racing writer could hit
            return current, None

        try:
            barrier.wait()
            modify(pool[index % len(pool)], org["id"], mutate)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(CHANGES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for extra in pool[1:]:
        extra.close()

    assert failures == []
    final, trail = snapshot(store, org["id"])
    assert {path: _lookup(final, path) for path, _, _ in CHANGES} == {
        path: value for path, _, value in CHANGES
    }
    assert final["version"] == 1 + len(CHANGES)
    updates = [e for e in trail if e["type"] == "organization.updated"]
    assert sorted(path for e in updates for path in e["changes"]) == sorted(
        path for path, _, _ in CHANGES
    )
    assert all(len(e["changes"]) == 1 for e in updates)
