"""SQL for the audit trail: append one event inside the caller's transaction, page through them."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database
from ulid import ULID

from storage.interface import Actor
from storage.records import event_from_row, to_json, utcnow

_COLUMNS = (
    "id",
    "type",
    "organization_id",
    "actor",
    "surface",
    "request_id",
    "changes",
    "attestation",
    "created_at",
)
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
    row = {
        "id": str(ULID()),
        "type": type_,
        "organization_id": org_id,
        "actor": to_json(actor),
        "surface": surface,
        "request_id": request_id,
        "changes": to_json(changes),
        "attestation": attestation,
        "created_at": at or utcnow(),
    }
    # A prepared statement, not table.insert(): this runs in every write transaction and
    # sqlite-utils' insert introspects the table (PRAGMA table_info) on each call.
    db.execute(_INSERT, [row[c] for c in _COLUMNS])
    return event_from_row(row)


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
