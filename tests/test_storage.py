"""storage/: migrations, connection pragmas, all-or-nothing writes, concurrent writers, key use.

Every test but the SQLite pragmas runs on both backends (see conftest)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    INTEGRITY_ERRORS,
    MISSING_ORG,
    OPERATOR,
    POSTGRESQL,
    SyncStore,
    new_database,
    outside,
    query,
    sync_store,
)
from storage import NotFoundError, open_store
from storage.postgresql import migrations as postgresql_migrations
from storage.sqlite import migrations as sqlite_migrations
from storage.sqlite.connection import connect

MIGRATIONS = (postgresql_migrations if POSTGRESQL else sqlite_migrations).MIGRATIONS
latest_version = (postgresql_migrations if POSTGRESQL else sqlite_migrations).latest_version


@pytest.fixture
def path(tmp_path: Path) -> str:
    """Where this test's fresh database lives (a file, or a PostgreSQL database's URL)."""
    return new_database(tmp_path, "storage.db")


@pytest.fixture
def fresh(path: Path) -> Iterator[SyncStore]:
    """A store over the fresh database, not migrated yet."""
    opened = SyncStore(open_store(path))
    yield opened
    opened.close()


@pytest.fixture
def store(path: Path) -> Iterator[SyncStore]:
    """A migrated store over the fresh database, closed after the test."""
    opened = sync_store(path)
    yield opened
    opened.close()


def snapshot(store: SyncStore, org_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The org record and its whole audit trail."""
    return store.get_org(org_id), store.list_events(org_id, limit=1000)[0]


def modify(store: SyncStore, org_id: str, mutate: Callable, surface: str = "cli"):
    """modify_org as the operator, without a request id."""
    return store.modify_org(org_id, mutate, actor=OPERATOR, surface=surface, request_id=None)


def schema(path: str) -> list[tuple[Any, ...]]:
    """Every table, column, index and trigger definition."""
    if not POSTGRESQL:
        return query(path, "SELECT name, sql FROM sqlite_master ORDER BY name")
    return query(
        path,
        "SELECT table_name, column_name, data_type, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY 1, 2",
    ) + query(
        path,
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " UNION ALL SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
        " ORDER BY 1",
    )


def schema_version(path: str) -> int:
    """The migration number the database records."""
    sql = "SELECT MAX(version) FROM schema_migrations" if POSTGRESQL else "PRAGMA user_version"
    return query(path, sql)[0][0]


class Refused(Exception):
    """Raised by a mutator to reject a change."""


def refuse(current: dict[str, Any]) -> tuple[dict[str, Any], None]:
    """A mutator that changes its copy, then rejects the change."""
    current["name"] = "Half-done"
    raise Refused


# -- migrations ---------------------------------------------------------------------------------


def test_migrate_brings_a_new_database_to_the_latest_version(fresh, path):
    """A new database ends at the number of migrations (user_version, schema_migrations),
    and is then ready."""
    assert fresh.migrate() == latest_version() == len(MIGRATIONS)
    assert schema_version(path) == len(MIGRATIONS)
    assert fresh.is_ready() is True


def test_migrate_again_is_a_no_op(store, org, path):
    """Re-running migrations changes neither the schema nor the data."""
    before_schema, before_data = schema(path), snapshot(store, org["id"])
    assert store.migrate() == latest_version()
    assert (schema(path), snapshot(store, org["id"])) == (before_schema, before_data)


def test_migrate_from_another_store_on_the_same_file_is_a_no_op(store, org, path):
    """A second process starting on a migrated database leaves it as it is."""
    before = schema(path), snapshot(store, org["id"])
    second = sync_store(path)
    try:
        assert second.migrate() == latest_version()
        assert (schema(path), snapshot(second, org["id"])) == before
    finally:
        second.close()


def test_only_operator_fields_are_set_on_every_backend(store, org):
    """Regression (issue 17): only the PostgreSQL store refused a field other than plan,
    throughput tier and tenant type; nothing is written."""
    before = snapshot(store, org["id"])
    with pytest.raises(ValueError, match="not operator fields"):
        store.set_operator_fields(org["id"], {"name": "Renamed"}, OPERATOR)
    assert snapshot(store, org["id"]) == before


def test_an_id_holding_nul_names_no_record_on_every_backend(store):
    """Regression (issue 17): only the PostgreSQL store treated an id holding NUL as naming
    no record."""
    with pytest.raises(NotFoundError):
        store.get_org("a\x00b")
    with pytest.raises(NotFoundError):
        store.revoke_key("key_\x00", OPERATOR)
    assert store.find_org_by_name("a\x00b") is None
    assert store.list_events("a\x00b", limit=5) == ([], None)


def test_unmigrated_database_is_not_ready(fresh):
    """/readyz's check fails until the schema is current."""
    assert fresh.is_ready() is False


# -- connection pragmas -------------------------------------------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("synchronous", 2), ("foreign_keys", 1), ("busy_timeout", 5000)],
)
def test_every_connection_has_the_durability_pragmas(path, pragma, expected):
    """connect() turns on WAL, synchronous=FULL, foreign keys and the bounded busy wait."""
    with closing(connect(path, 5.0, create=True)) as db:
        assert db.execute(f"PRAGMA {pragma}").fetchone()[0] == expected


@pytest.mark.sqlite_only
def test_wal_mode_is_kept_in_the_database_file(store, path):
    """Any program opening the store's file finds it in WAL mode."""
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


def test_foreign_keys_are_enforced(store, path):
    """A brand row for an organization that does not exist is refused by the database."""
    # SQLite checks foreign keys per connection: the store's connections turn them on.
    opened = outside(path) if POSTGRESQL else closing(connect(path, 5.0))
    with opened as db, pytest.raises(INTEGRITY_ERRORS):
        db.execute(
            "INSERT INTO brands (id, organization_id, status, campaign_count, created_at)"
            " VALUES ('b', 'no-such-org', 'ACTIVE', 0, '2026-01-01T00:00:00Z')"
        )
    assert query(path, "SELECT COUNT(*) FROM brands") == [(0,)]


def test_a_brand_for_a_missing_organization_writes_nothing(store, path):
    """create_brand for an unknown organization raises NotFoundError; no brand, no event."""
    with pytest.raises(NotFoundError):
        store.create_brand(org_id=MISSING_ORG, status="ACTIVE", campaigns=1, actor=OPERATOR)
    assert query(path, "SELECT COUNT(*) FROM brands") == [(0,)]
    assert query(path, "SELECT COUNT(*) FROM audit_events") == [(0,)]


# -- modify_org is all or nothing ---------------------------------------------------------------


def test_mutate_raising_changes_nothing(store, org):
    """When the mutator raises, the error propagates and no row or event is written."""
    before = snapshot(store, org["id"])
    with pytest.raises(Refused):
        modify(store, org["id"], refuse)
    assert snapshot(store, org["id"]) == before


def test_failed_event_write_rolls_back_the_row_change(store, org):
    """If the audit event cannot be written, the organization update is undone too."""
    before = snapshot(store, org["id"])
    with pytest.raises(INTEGRITY_ERRORS):
        # surface is CHECK-constrained: the row update succeeds, the event insert fails.
        modify(store, org["id"], lambda o: ({**o, "name": "Orphan"}, None), surface="nowhere")
    assert snapshot(store, org["id"]) == before


def test_row_that_breaks_a_constraint_changes_nothing(store, org):
    """A record the database refuses (mms above message retention) writes nothing."""
    before = snapshot(store, org["id"])
    with pytest.raises(INTEGRITY_ERRORS):
        modify(store, org["id"], lambda o: ({**o, "mms_retention_days": 200}, None))
    assert snapshot(store, org["id"]) == before


def test_store_keeps_working_after_a_rolled_back_write(store, org):
    """A rejected write releases the write lock and the transaction."""
    with pytest.raises(INTEGRITY_ERRORS):
        modify(store, org["id"], lambda o: ({**o, "mms_retention_days": 200}, None))
    updated, event = modify(store, org["id"], lambda o: ({**o, "name": "After"}, None))
    assert (updated["name"], updated["version"]) == ("After", 2)
    assert event is not None


def test_change_and_event_are_committed_together(store, org):
    """An effective change bumps the version by one and writes one event with its diff."""
    updated, event = modify(store, org["id"], lambda o: ({**o, "is_reseller": True}, None))
    org_after, trail = snapshot(store, org["id"])
    assert org_after == updated
    assert updated["version"] == org["version"] + 1
    assert [e["type"] for e in trail] == ["organization.updated", "organization.created"]
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
    ("auto_replies.help_text", lambda o: o["auto_replies"].update(help_text="Hi."), "Hi."),
    ("contact_protection_period", lambda o: o.update(contact_protection_period=48), 48),
]


def change(index: int) -> Callable[[dict[str, Any]], tuple[dict[str, Any], None]]:
    """A mutator applying CHANGES[index] slowly, to widen any read-modify-write race."""

    def mutate(current: dict[str, Any]) -> tuple[dict[str, Any], None]:
        CHANGES[index][1](current)
        time.sleep(0.01)
        return current, None

    return mutate


def lookup(org: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a record."""
    value: Any = org
    for part in dotted.split("."):
        value = value[part]
    return value


def assert_every_change_landed_once(store: SyncStore, org_id: str) -> None:
    """Every field of CHANGES has its new value, with one event and one version each."""
    final, trail = snapshot(store, org_id)
    assert {p: lookup(final, p) for p, _, _ in CHANGES} == {p: v for p, _, v in CHANGES}
    assert final["version"] == 1 + len(CHANGES)
    updates = [e for e in trail if e["type"] == "organization.updated"]
    assert sorted(p for e in updates for p in e["changes"]) == sorted(p for p, _, _ in CHANGES)
    assert all(len(e["changes"]) == 1 for e in updates)


def test_concurrent_tasks_on_one_store_never_lose_an_update(store, org, path):
    """Eight asyncio tasks each changing a different field: every change lands, one event each."""

    async def main() -> None:
        shared = open_store(path)
        await shared.start()
        modify = partial(shared.modify_org, actor=OPERATOR, surface="v1", request_id=None)
        try:
            writes = (modify(org["id"], change(i)) for i in range(len(CHANGES)))
            await asyncio.wait_for(asyncio.gather(*writes), timeout=30)
        finally:
            await shared.close()

    asyncio.run(main())
    assert_every_change_landed_once(store, org["id"])


def test_concurrent_stores_on_one_file_never_lose_an_update(store, org, path):
    """Eight threads over four stores on one file (as four processes): no change is lost."""
    pool = [sync_store(path) for _ in range(4)]
    barrier = threading.Barrier(len(CHANGES))
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            modify(pool[index % len(pool)], org["id"], change(index))
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(CHANGES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for extra in pool:
        extra.close()
    assert failures == []
    assert_every_change_landed_once(store, org["id"])


# -- when keys were last used -------------------------------------------------------------------


def make_key(store: SyncStore, org_id: str) -> tuple[str, str]:
    """A new API key for the org; returns its id and hash."""
    key_hash = "ab" * 32
    key = store.create_key(
        org_id=org_id, key_hash=key_hash, prefix="osk_test", scopes=["org:read"], actor=OPERATOR
    )
    return key["id"], key_hash


def test_noted_key_use_is_written_within_a_second(path):
    """note_key_use reaches last_used_at by the next flush, without any write to carry it."""
    fast = sync_store(path, key_usage_seconds=0.05)
    try:
        org = fast.create_org(name="Acme", actor=OPERATOR)
        key_id, key_hash = make_key(fast, org["id"])
        fast.note_key_use(key_id)
        deadline = time.monotonic() + 1.0
        while fast.key_by_hash(key_hash)["last_used_at"] is None:
            assert time.monotonic() < deadline, "last_used_at not written within a second"
            time.sleep(0.01)
    finally:
        fast.close()


def test_close_writes_pending_key_uses(path):
    """A use noted long before its flush is due is written when the store closes."""
    slow = sync_store(path, key_usage_seconds=3600)
    org = slow.create_org(name="Acme", actor=OPERATOR)
    key_id, key_hash = make_key(slow, org["id"])
    slow.note_key_use(key_id)
    assert slow.key_by_hash(key_hash)["last_used_at"] is None
    slow.close()
    reopened = sync_store(path)
    try:
        assert reopened.key_by_hash(key_hash)["last_used_at"] is not None
    finally:
        reopened.close()


# -- the key lookup carries its organization -----------------------------------------------------


def orphan_key(path: str, key_hash: str) -> None:
    """Point the key at an organization that does not exist, past the foreign key, as someone
    with full access to the database can (SQLite: a plain connection does not enforce it;
    PostgreSQL: a superuser's session_replication_role)."""
    with outside(path) as conn:
        if POSTGRESQL:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                "UPDATE api_keys SET organization_id = %s WHERE key_hash = %s",
                [MISSING_ORG, key_hash],
            )
        else:
            conn.execute(
                "UPDATE api_keys SET organization_id = ? WHERE key_hash = ?",
                [MISSING_ORG, key_hash],
            )


def test_the_key_lookup_carries_its_organization_as_get_org_reads_it(store):
    """One read: the key as it is stored (no hash) and its organization's full record."""
    org = store.create_org(name="Acme", actor=OPERATOR)
    store.create_brand(org_id=org["id"], status="PENDING", campaigns=2, actor=OPERATOR)
    created = store.create_key(
        org_id=org["id"], key_hash="cd" * 32, prefix="osk_test", scopes=["org:read"], actor=OPERATOR
    )
    found = store.key_by_hash("cd" * 32)
    organization = found.pop("organization")
    assert found == created
    assert organization == store.get_org(org["id"])
    assert organization["registration_status"] == {
        "brand": "PENDING",
        "brand_count": 1,
        "campaign_count": 2,
    }
    assert store.key_by_hash("ef" * 32) is None


def test_the_key_lookup_without_its_organization_is_the_key_alone(store):
    """What every request but GET /v1/organization asks for: the same key, no organization."""
    org = store.create_org(name="Acme", actor=OPERATOR)
    created = store.create_key(
        org_id=org["id"], key_hash="cd" * 32, prefix="osk_test", scopes=["org:read"], actor=OPERATOR
    )
    assert store.key_by_hash("cd" * 32, with_organization=False) == created
    assert store.key_by_hash("ef" * 32, with_organization=False) is None
    store.revoke_key(created["id"], OPERATOR)
    assert store.key_by_hash("cd" * 32, with_organization=False)["revoked_at"] is not None


def test_the_key_lookup_reads_the_live_organization_and_key(store):
    """Nothing is cached: a change or a revocation is in the very next lookup."""
    org = store.create_org(name="Acme", actor=OPERATOR)
    key_id, key_hash = make_key(store, org["id"])
    assert store.key_by_hash(key_hash)["organization"]["name"] == "Acme"
    changed, _ = modify(store, org["id"], lambda current: ({**current, "name": "Renamed"}, None))
    found = store.key_by_hash(key_hash)
    assert found["organization"] == changed == store.get_org(org["id"])
    assert found["organization"]["version"] == 2
    store.revoke_key(key_id, OPERATOR)
    found = store.key_by_hash(key_hash)
    assert found["revoked_at"] is not None
    assert found["organization"] == store.get_org(org["id"])


def test_a_key_whose_organization_is_gone_is_found_without_one(store, path):
    """The key is still found (and refused or not on its own terms); its organization is
    None, where get_org raises NotFoundError."""
    org = store.create_org(name="Acme", actor=OPERATOR)
    key_id, key_hash = make_key(store, org["id"])
    orphan_key(path, key_hash)
    found = store.key_by_hash(key_hash)
    assert found["id"] == key_id
    assert found["organization_id"] == MISSING_ORG
    assert found["organization"] is None
    with pytest.raises(NotFoundError):
        store.get_org(MISSING_ORG)
