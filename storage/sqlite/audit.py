"""SQL for the audit trail: append one event inside the caller's transaction, page through them."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.audit_chain import CHAINED_FIELDS
from storage.records import END_SEQ, Draft, chains_of, event_from_row, new_event_row, page_of

#: Every stored field of an event: the chained ones and the hash over them.
_COLUMNS = (*CHAINED_FIELDS, "hash")
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_PAGE = "SELECT * FROM audit_events WHERE organization_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"


def record(db: Database, draft: Draft) -> dict[str, Any]:
    """Append one event in the open transaction; returns it as both surfaces show it."""
    row = new_event_row(draft, prev_hash=_last_hash(db, draft.org_id))
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
    if org_id is None:
        return chains_of(db.query("SELECT * FROM audit_events ORDER BY seq"))
    sql = "SELECT * FROM audit_events WHERE organization_id = ? ORDER BY seq"
    return chains_of(db.query(sql, [org_id]))


def page(
    db: Database, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Events newest first; the page and the seq to continue before, if there are more."""
    before = END_SEQ if before_seq is None else before_seq
    return page_of(list(db.query(_PAGE, [org_id, before, limit + 1])), limit)
