"""SQL for the opt-out ledger and the requests remembered for idempotency (PostgreSQL).

Every write locks the organization's row first (``organizations.lock``), like every other
write: two instances receiving the same STOP, or a retried webhook racing the first, run one
after the other, and the second finds the entry (and the remembered answer) the first made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

from storage.errors import IdempotencyConflict, NotFoundError
from storage.postgresql import audit, organizations
from storage.records import (
    By,
    from_json,
    new_opt_out_row,
    new_remembered_row,
    opt_out_event,
    opt_out_from_row,
)

_COLUMNS = (
    "organization_id",
    "phone_number",
    "source",
    "keyword",
    "inbound_message_id",
    "reason",
    "created_at",
)
_INSERT = (
    f"INSERT INTO opt_outs ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)})"
)
_REMEMBERED_COLUMNS = ("organization_id", "kind", "id", "fingerprint", "answer", "created_at")
_REMEMBER = (
    f"INSERT INTO remembered_requests ({', '.join(_REMEMBERED_COLUMNS)})"
    f" VALUES ({', '.join('%s' for _ in _REMEMBERED_COLUMNS)})"
)


async def get(conn: AsyncConnection, org_id: str, phone_number: str) -> dict[str, Any] | None:
    """The ledger entry for one number, or None."""
    cursor = await conn.execute(
        "SELECT * FROM opt_outs WHERE organization_id = %s AND phone_number = %s",
        [org_id, phone_number],
    )
    row = await cursor.fetchone()
    return opt_out_from_row(row) if row else None


async def opted_out(conn: AsyncConnection, org_id: str, phone_numbers: list[str]) -> set[str]:
    """Which of these numbers are in the ledger (one query, whatever the count)."""
    if not phone_numbers:
        return set()
    cursor = await conn.execute(
        "SELECT phone_number FROM opt_outs WHERE organization_id = %s AND phone_number = ANY(%s)",
        [org_id, phone_numbers],
    )
    return {row["phone_number"] for row in await cursor.fetchall()}


async def page(
    conn: AsyncConnection, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Entries newest first; the page and the seq to continue before, if there are more."""
    sql = "SELECT * FROM opt_outs WHERE organization_id = %s"
    params: list[Any] = [org_id]
    if before_seq is not None:
        sql += " AND seq < %s"
        params.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT %s"
    params.append(limit + 1)
    cursor = await conn.execute(sql, params)
    rows = await cursor.fetchall()
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [opt_out_from_row(r) for r in rows[:limit]], next_seq


async def _add(conn: AsyncConnection, row: dict[str, Any], by: By) -> dict[str, Any]:
    await conn.execute(_INSERT, [row[c] for c in _COLUMNS])
    entry = opt_out_from_row(row)
    await audit.record(conn, opt_out_event(by, row["organization_id"], None, entry))
    return entry


async def _remove(conn: AsyncConnection, org_id: str, entry: dict[str, Any], by: By) -> None:
    await conn.execute(
        "DELETE FROM opt_outs WHERE organization_id = %s AND phone_number = %s",
        [org_id, entry["phone_number"]],
    )
    await audit.record(conn, opt_out_event(by, org_id, entry, None))


async def put(
    conn: AsyncConnection,
    *,
    org_id: str,
    phone_number: str,
    reason: str | None,
    by: By,
) -> tuple[dict[str, Any], bool]:
    """Add an entry by hand (source ``api``): the entry and True, or the existing entry
    unchanged and False (no event)."""
    await organizations.lock(conn, org_id)
    existing = await get(conn, org_id, phone_number)
    if existing is not None:
        return existing, False
    row = new_opt_out_row(
        org_id=org_id,
        phone_number=phone_number,
        source="api",
        keyword=None,
        inbound_message_id=None,
        reason=reason,
    )
    return await _add(conn, row, by), True


async def delete(
    conn: AsyncConnection,
    *,
    org_id: str,
    phone_number: str,
    check: Callable[[dict[str, Any]], None],
    by: By,
) -> dict[str, Any]:
    """Remove an entry after ``check`` accepts it; raises NotFoundError."""
    await organizations.lock(conn, org_id)
    entry = await get(conn, org_id, phone_number)
    if entry is None:
        raise NotFoundError(phone_number)
    check(entry)
    await _remove(conn, org_id, entry, by)
    return entry


async def remembered(
    conn: AsyncConnection, org_id: str, kind: str, request_id: str
) -> dict[str, Any] | None:
    """The fingerprint and answer remembered for a request id, or None."""
    cursor = await conn.execute(
        "SELECT fingerprint, answer FROM remembered_requests"
        " WHERE organization_id = %s AND kind = %s AND id = %s",
        [org_id, kind, request_id],
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return {"fingerprint": row["fingerprint"], "answer": from_json(row["answer"])}


async def replay(
    conn: AsyncConnection, org_id: str, kind: str, request_id: str, fingerprint: str
) -> dict[str, Any] | None:
    """The first answer under this id when the payload is the same; None when the id is new.
    Raises IdempotencyConflict when the id came with another payload."""
    prior = await remembered(conn, org_id, kind, request_id)
    if prior is None:
        return None
    if prior["fingerprint"] != fingerprint:
        raise IdempotencyConflict(request_id)
    return prior["answer"]


async def remember(
    conn: AsyncConnection,
    *,
    org_id: str,
    kind: str,
    request_id: str,
    fingerprint: str,
    answer: dict[str, Any],
) -> None:
    """Remember the answer given to a request id, in the open transaction."""
    row = new_remembered_row(
        org_id=org_id, kind=kind, request_id=request_id, fingerprint=fingerprint, answer=answer
    )
    await conn.execute(_REMEMBER, [row[c] for c in _REMEMBERED_COLUMNS])


async def receive_inbound(
    conn: AsyncConnection,
    *,
    org_id: str,
    message_id: str,
    phone_number: str,
    fingerprint: str,
    decide: Callable[..., tuple[dict[str, Any], str | None]],
    by: By,
) -> tuple[dict[str, Any], bool]:
    """Apply an inbound keyword message to the ledger once: the answer, and whether it is a
    replay of the first answer under ``message_id`` (see Store.receive_inbound)."""
    await organizations.lock(conn, org_id)
    first = await replay(conn, org_id, "inbound", message_id, fingerprint)
    if first is not None:
        return first, True
    org = await organizations.read(conn, org_id)
    entry = await get(conn, org_id, phone_number)
    answer, change = decide(org, entry)
    if change == "add" and entry is None:
        row = new_opt_out_row(
            org_id=org_id,
            phone_number=phone_number,
            source="keyword",
            keyword=answer["keyword"],
            inbound_message_id=message_id,
            reason=None,
        )
        await _add(conn, row, by)
    elif change == "remove" and entry is not None:
        await _remove(conn, org_id, entry, by)
    await remember(
        conn,
        org_id=org_id,
        kind="inbound",
        request_id=message_id,
        fingerprint=fingerprint,
        answer=answer,
    )
    return answer, False
