"""The audit trail is append-only in the database and tamper-evident through its hash chain."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import DATABASE_ERRORS, OPERATOR, POSTGRESQL, bearer, outside, rename, sync_store
from storage.audit_chain import event_hash, first_break
from storage.sqlite.migrations import MIGRATIONS


@pytest.fixture
def two_orgs(store) -> list[dict[str, Any]]:
    """Two organizations, each with a few events."""
    orgs = [store.create_org(name=f"Org {n}", actor=OPERATOR) for n in range(2)]
    for n in range(3):
        for org in orgs:
            rename(store, org["id"], f"{org['name']} {n}")
    return orgs


def raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain connection to the database file, as an outside program would open it."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def tamper(database: str, statement: str, params: list[Any]) -> None:
    """Change the trail as someone with full access to the database can: past the append-only
    guard (SQLite: drop its triggers; PostgreSQL: a superuser's session_replication_role)."""
    with outside(database) as conn:
        if POSTGRESQL:
            conn.execute("SET session_replication_role = replica")
            conn.execute(statement.replace("?", "%s"), params)
        else:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute("DROP TRIGGER audit_events_no_delete")
            conn.execute(statement, params)


def test_every_event_links_to_the_previous_one_of_its_organization(store, two_orgs) -> None:
    """prev_hash is the previous event's hash (null for the first); hash matches the content."""
    for org in two_orgs:
        events = list(reversed(store.list_events(org["id"], limit=100)[0]))
        assert len(events) == 4
        assert events[0]["prev_hash"] is None
        assert first_break(events) is None
    assert store.verify_audit() == {"organizations": 2, "events": 8, "broken": None}


def test_a_changed_event_is_named_by_verify(config, store, two_orgs) -> None:
    """Someone with file access edits one event: verify names exactly that event."""
    victim = store.list_events(two_orgs[1]["id"], limit=100)[0][1]
    tamper(
        config.database,
        "UPDATE audit_events SET attestation = 'forged' WHERE id = ?",
        [victim["id"]],
    )
    result = store.verify_audit()
    assert result["broken"] == {
        "id": victim["id"],
        "organization_id": two_orgs[1]["id"],
        "reason": "hash does not match the event's content",
    }
    assert store.verify_audit(two_orgs[0]["id"])["broken"] is None


def test_a_removed_event_breaks_the_chain_after_it(config, store, two_orgs) -> None:
    """Deleting an event (triggers dropped) leaves the next one pointing at a missing hash."""
    events = list(reversed(store.list_events(two_orgs[0]["id"], limit=100)[0]))
    tamper(config.database, "DELETE FROM audit_events WHERE id = ?", [events[1]["id"]])
    broken = store.verify_audit(two_orgs[0]["id"])["broken"]
    assert broken["id"] == events[2]["id"]
    assert broken["reason"] == "prev_hash is not the hash of the previous event"


REUSING_INSERTS = (
    [
        # PostgreSQL: seq is GENERATED ALWAYS and unique, id unique; an upsert reaches the
        # update trigger.
        "INSERT INTO audit_events OVERRIDING SYSTEM VALUE"
        " SELECT * FROM audit_events ORDER BY seq LIMIT 1",
        "INSERT INTO audit_events (id, type, organization_id, actor, surface, changes,"
        " created_at, hash) SELECT id, type, organization_id, actor, surface, '{}', created_at,"
        " hash FROM audit_events ORDER BY seq LIMIT 1",
        "INSERT INTO audit_events OVERRIDING SYSTEM VALUE"
        " SELECT * FROM audit_events ORDER BY seq LIMIT 1"
        " ON CONFLICT (seq) DO UPDATE SET changes = '{}'",
    ]
    if POSTGRESQL
    else [
        "INSERT OR REPLACE INTO audit_events SELECT * FROM audit_events WHERE seq = 1",
        "REPLACE INTO audit_events (seq, id, type, organization_id, actor, surface, changes,"
        " created_at) SELECT seq, 'evt_new', type, organization_id, actor, surface, '{}',"
        " created_at FROM audit_events WHERE seq = 1",
        "INSERT INTO audit_events (id, type, organization_id, actor, surface, changes,"
        " created_at) SELECT id, type, organization_id, actor, surface, '{}', created_at"
        " FROM audit_events WHERE seq = 1",
    ]
)


@pytest.mark.parametrize("sql", REUSING_INSERTS)
def test_an_insert_reusing_an_event_is_refused(config, store, two_orgs, sql) -> None:
    """REPLACE, an upsert, or any insert reusing an event's id or seq, is refused by the
    database."""
    before = store.list_events(two_orgs[0]["id"], limit=100)[0]
    refused = pytest.raises(DATABASE_ERRORS, match=r"append-only|duplicate key")
    with outside(config.database) as conn, refused:
        conn.execute(sql)
    assert store.list_events(two_orgs[0]["id"], limit=100)[0] == before
    assert store.verify_audit()["broken"] is None


@pytest.mark.sqlite_only
def test_the_migration_chains_events_written_before_it(tmp_path: Path) -> None:
    """A database at schema 1 with events gets every event chained by migration 2."""
    path = tmp_path / "old.db"
    with raw(path) as conn:
        MIGRATIONS[0](_Shim(conn))
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO organizations (id, name, quiet_hours, auto_replies, created_at,"
            " updated_at) VALUES ('org-1', 'Old', '{}', '{}', 't0', 't0')"
        )
        for n in range(3):
            conn.execute(
                "INSERT INTO audit_events (id, type, organization_id, actor, surface, changes,"
                " created_at) VALUES (?, 'organization.updated', 'org-1',"
                " '{\"type\":\"operator\"}', 'cli', '{}', ?)",
                [f"evt-{n}", f"2026-01-0{n + 1}T00:00:00.000Z"],
            )
    store = sync_store(path)
    try:
        events = list(reversed(store.list_events("org-1", limit=10)[0]))
        assert [e["id"] for e in events] == ["evt-0", "evt-1", "evt-2"]
        assert events[1]["prev_hash"] == events[0]["hash"] == event_hash(events[0])
        assert store.verify_audit() == {"organizations": 1, "events": 3, "broken": None}
    finally:
        store.close()


class _Shim:
    """Enough of sqlite-utils' Database for migration 1 (it only calls execute)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql, params)


def test_a_client_can_check_the_chain_from_the_api(client, store, org, admin_key) -> None:
    """Every page of GET /v1/audit_events, oldest first, checks out with the documented rule."""
    for n in range(5):
        rename(store, org["id"], f"Name {n}")
    events, cursor = [], ""
    while True:
        page = client.get(f"/v1/audit_events?limit=2{cursor}", headers=bearer(admin_key)).json()
        events += page["data"]
        if not page["has_more"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    events.reverse()
    assert len(events) == 7
    assert first_break(events) is None
