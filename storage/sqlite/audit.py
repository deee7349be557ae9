"""SQL for the audit trail: append one event inside the caller's transaction, page through them."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.audit_chain import CHAINED_FIELDS
from storage.records import event_from_row, new_event_row
from storage.store import Actor

#: Every stored field of an event: the chained ones and the hash over them.
_COLUMNS = (*CHAINED_FIELDS, "hash")
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def record(
    db: Database,
    *,
    type_: str,
    org_id: str,
    actor: Actor,
    surface: str = "cli",
    request_id: str | None = None,
    changes: dict[str, Any],
    attestation: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """Append one event in the open transaction; returns it as both surfaces show it."""
    row = new_event_row(
        type_=type_,
        org_id=org_id,
        actor=actor,
        surface=surface,
        request_id=request_id,
        changes=changes,
        attestation=attestation,
        at=at,
        prev_hash=_last_hash(db, org_id),
    )
    # A prepared statement, not table.insert(): this runs in every write transaction and
    # sqlite-utils' insert introspects the table (PRAGMA table_info) on each call.
    db.execute(_INSERT, [row[c] for c in _COLUMNS])
    return event_from_row(row)


def _last_hash(db: Database, org_id: str) -> str | None:
    """The hash of the organization's newest event (the writer holds the write lock, so no
    other event of it can be appended before this transaction commits)."""
    row = db.conn.execute(
        "SELECT hash FROM audit_events WHERE organization_id = ? ORDER BY seq DESC LIMIT 1",
        [org_id],
    ).fetchone()
    return row[0] if row else None


def chain(db: Database, org_id: str | None) -> list[list[dict[str, Any]]]:
    """Every organization's events (or one's), oldest first, one list per organization."""
    sql = "SELECT * FROM audit_events"
    params: list[Any] = []
    if org_id is not None:
        sql += " WHERE organization_id = ?"
        params.append(org_id)
    chains: dict[str, list[dict[str, Any]]] = {}
    for row in db.query(sql + " ORDER BY seq", params):
        event = event_from_row(row)
        chains.setdefault(event["organization_id"], []).append(event)
    return list(chains.values())


def page(
    db: Database, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Events newest first; the page and the seq to continue before, if there are more."""
    sql = "SELECT * FROM audit_events WHERE organization_id = ?"
    params: list[Any] = [org_id]
    if before_seq is not None:
        sql += " AND seq < ?"
        params.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT ?"
    params.append(limit + 1)
    rows = list(db.query(sql, params))
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [event_from_row(r) for r in rows[:limit]], next_seq
