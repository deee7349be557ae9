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
from storage.records import END_SEQ, Draft, chains_of, event_from_row, new_event_row, page_of

_COLUMNS = (*CHAINED_FIELDS, "hash")
#: ``record``'s default: the previous hash has not been read yet.
UNREAD = object()
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)})"
)
_PAGE = (
    "SELECT * FROM audit_events WHERE organization_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s"
)


async def record(
    conn: AsyncConnection, draft: Draft, prev_hash: str | object | None = UNREAD
) -> dict[str, Any]:
    """Append one event in the open transaction (the organization's row is locked).

    ``prev_hash`` is the hash of the organization's newest event when the caller read it under
    the lock already; by default it is read here.
    """
    if prev_hash is UNREAD:
        prev_hash = await _last_hash(conn, draft.org_id)
    row = new_event_row(draft, prev_hash)
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
    if org_id is None:
        cursor = await conn.execute("SELECT * FROM audit_events ORDER BY seq")
    else:
        sql = "SELECT * FROM audit_events WHERE organization_id = %s ORDER BY seq"
        cursor = await conn.execute(sql, [org_id])
    return chains_of(await cursor.fetchall())


async def page(
    conn: AsyncConnection, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Events newest first; the page and the seq to continue before, if there are more."""
    before = END_SEQ if before_seq is None else before_seq
    cursor = await conn.execute(_PAGE, [org_id, before, limit + 1])
    return page_of(await cursor.fetchall(), limit)
