"""SQL for the audit trail: append one event inside the caller's transaction, page through them.

Every caller holds the organization's row lock (``organizations.lock``) before it appends, so
the events of one organization are appended one transaction at a time, across every instance:
``prev_hash`` is always the hash of the event committed just before, and ``seq`` grows in
commit order within an organization.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.audit_chain import CHAINED_FIELDS
from storage.records import event_from_row, new_event_row
from storage.store import Actor

_COLUMNS = (*CHAINED_FIELDS, "hash")
#: ``record``'s default: the previous hash has not been read yet.
UNREAD = object()
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)})"
)


async def record(
    conn: AsyncConnection,
    *,
    type_: str,
    org_id: str,
    actor: Actor,
    surface: str = "cli",
    request_id: str | None = None,
    changes: dict[str, Any],
    attestation: str | None = None,
    at: str | None = None,
    prev_hash: str | object | None = UNREAD,
) -> dict[str, Any]:
    """Append one event in the open transaction (the organization's row is locked).

    ``prev_hash`` is the hash of the organization's newest event when the caller read it under
    the lock already; by default it is read here.
    """
    row = new_event_row(
        type_=type_,
        org_id=org_id,
        actor=actor,
        surface=surface,
        request_id=request_id,
        changes=changes,
        attestation=attestation,
        at=at,
        prev_hash=await _last_hash(conn, org_id) if prev_hash is UNREAD else prev_hash,
    )
    await conn.execute(_INSERT, [row[c] for c in _COLUMNS])
    return event_from_row(row)


async def _last_hash(conn: AsyncConnection, org_id: str) -> str | None:
    cursor = await conn.execute(
        "SELECT hash FROM audit_events WHERE organization_id = %s ORDER BY seq DESC LIMIT 1",
        [org_id],
    )
    row = await cursor.fetchone()
    return row["hash"] if row else None


async def chain(conn: AsyncConnection, org_id: str | None) -> list[list[dict[str, Any]]]:
    """Every organization's events (or one's), oldest first, one list per organization."""
    sql = "SELECT * FROM audit_events"
    params: list[Any] = []
    if org_id is not None:
        sql += " WHERE organization_id = %s"
        params.append(org_id)
    chains: dict[str, list[dict[str, Any]]] = {}
    cursor = await conn.execute(sql + " ORDER BY seq", params)
    async for row in cursor:
        event = event_from_row(row)
        chains.setdefault(event["organization_id"], []).append(event)
    return list(chains.values())


async def page(
    conn: AsyncConnection, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Events newest first; the page and the seq to continue before, if there are more."""
    sql = "SELECT * FROM audit_events WHERE organization_id = %s"
    params: list[Any] = [org_id]
    if before_seq is not None:
        sql += " AND seq < %s"
        params.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT %s"
    params.append(limit + 1)
    cursor = await conn.execute(sql, params)
    rows = await cursor.fetchall()
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [event_from_row(r) for r in rows[:limit]], next_seq
