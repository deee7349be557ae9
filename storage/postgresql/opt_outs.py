"""SQL for the opt-out ledger and the requests remembered for idempotency (PostgreSQL).

Every write locks the organization's row first (``organizations.lock``), like every other
write: two instances receiving the same STOP, or a retried webhook racing the first, run one
after the other, and the second finds the entry (and the remembered answer) the first made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

from storage import ledger, records
from storage.errors import IdempotencyConflict, NotFoundError
from storage.postgresql import audit, organizations
from storage.records import By

_INSERT = records.insert_statement("opt_outs", ledger.OPT_OUT_COLUMNS, "%s")
_GET = "SELECT * FROM opt_outs WHERE organization_id = %s AND phone_number = %s"
#: The page's LIMIT is written into the statement (``page_statement``), not sent as a parameter.
#: psycopg prepares a statement run five times on a connection, and PostgreSQL then keeps one
#: generic plan for it only when that plan costs about what the plans made for each call's
#: values did. Planned without its values, ``LIMIT $3`` counts as a tenth of the organization's
#: rows: for a large ledger far dearer than the 21 rows each call's own plan reads, so every
#: page was planned again (about 0.1 ms each, on the bench VM). With the number in the text, the
#: generic plan is the same range of the primary key (organization_id, seq) and is kept.
_PAGE = (
    "SELECT * FROM opt_outs WHERE organization_id = %s AND seq < %s ORDER BY seq DESC"
    " LIMIT {rows:d}"
)
_REMEMBER = records.insert_statement("remembered_requests", ledger.REMEMBERED_COLUMNS, "%s")


async def get(conn: AsyncConnection, org_id: str, phone_number: str) -> dict[str, Any] | None:
    """The ledger entry for one number, or None."""
    cursor = await conn.execute(
        _GET,
        [org_id, phone_number],
    )
    row = await cursor.fetchone()
    return ledger.opt_out_from_row(row) if row else None


async def opted_out(conn: AsyncConnection, org_id: str, phone_numbers: list[str]) -> set[str]:
    """Which of these numbers are in the ledger (one query, whatever the count)."""
    if not phone_numbers:
        return set()
    cursor = await conn.execute(
        "SELECT phone_number FROM opt_outs WHERE organization_id = %s AND phone_number = ANY(%s)",
        [org_id, phone_numbers],
    )
    return {row["phone_number"] for row in await cursor.fetchall()}


@functools.cache
def page_statement(rows: int) -> str:
    """The newest-first page statement reading at most ``rows`` rows (an int: ``:d`` refuses
    anything else); the parameters are the organization and the seq to read before."""
    return _PAGE.format(rows=rows)


async def page(
    conn: AsyncConnection, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Entries newest first; the page and the seq to continue before, if there are more."""
    before = records.END_SEQ if before_seq is None else before_seq
    cursor = await conn.execute(page_statement(limit + 1), [org_id, before])
    return records.page_of(await cursor.fetchall(), limit, ledger.opt_out_from_row)


async def _add(conn: AsyncConnection, row: dict[str, Any], by: By) -> dict[str, Any]:
    await conn.execute(_INSERT, [row[c] for c in ledger.OPT_OUT_COLUMNS])
    entry = ledger.opt_out_from_row(row)
    await audit.record(conn, ledger.opt_out_event(by, row["organization_id"], None, entry))
    return entry


async def _remove(conn: AsyncConnection, org_id: str, entry: dict[str, Any], by: By) -> None:
    await conn.execute(
        "DELETE FROM opt_outs WHERE organization_id = %s AND phone_number = %s",
        [org_id, entry["phone_number"]],
    )
    await audit.record(conn, ledger.opt_out_event(by, org_id, entry, None))


_CLAIM = ledger.CLAIM_STATEMENT.format(p="%s")


async def _claim(
    conn: AsyncConnection, org_id: str, entry: dict[str, Any], keyword: str, message_id: str, by: By
) -> None:
    await conn.execute(_CLAIM, [keyword, message_id, org_id, entry["phone_number"]])
    after = ledger.claimed(entry, keyword, message_id)
    await audit.record(conn, ledger.opt_out_event(by, org_id, entry, after))


async def put(
    conn: AsyncConnection, org_id: str, phone_number: str, reason: str | None, by: By
) -> tuple[dict[str, Any], bool]:
    """Add an entry by hand (source ``api``): the entry and True, or the existing entry
    unchanged and False (no event)."""
    await organizations.lock(conn, org_id)
    existing = await get(conn, org_id, phone_number)
    if existing is not None:
        return existing, False
    row = ledger.new_opt_out_row(org_id, phone_number, "api", None, None, reason)
    return await _add(conn, row, by), True


async def delete(
    conn: AsyncConnection,
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


async def replay(conn: AsyncConnection, request: ledger.Remembered) -> dict[str, Any] | None:
    """The first answer under the request's id when its payload is the same; None when the id
    is new. Raises IdempotencyConflict when the id came with another payload."""
    cursor = await conn.execute(
        "SELECT fingerprint, answer FROM remembered_requests"
        " WHERE organization_id = %s AND kind = %s AND id = %s",
        [request.org_id, request.kind, request.id],
    )
    prior = await cursor.fetchone()
    if prior is None:
        return None
    if prior["fingerprint"] != request.fingerprint:
        raise IdempotencyConflict(request.id)
    return records.from_json(prior["answer"])


async def remember(
    conn: AsyncConnection, request: ledger.Remembered, answer: dict[str, Any]
) -> None:
    """Remember the answer given to a request, in the open transaction."""
    row = request.row(answer)
    await conn.execute(_REMEMBER, [row[c] for c in ledger.REMEMBERED_COLUMNS])


async def receive_inbound(
    conn: AsyncConnection,
    request: ledger.Remembered,
    phone_number: str,
    decide: ledger.InboundDecide,
    by: By,
) -> ledger.Answered:
    """Apply an inbound keyword message to the ledger once: the answer, and whether it is a
    replay of the first answer under its id (see Store.receive_inbound)."""
    org_id, message_id = request.org_id, request.id
    await organizations.lock(conn, org_id)
    first = await replay(conn, request)
    if first is not None:
        return first, True
    org = await organizations.read(conn, org_id)
    entry = await get(conn, org_id, phone_number)
    answer, change = decide(org, entry)
    if change == "add" and entry is None:
        row = ledger.new_opt_out_row(
            org_id, phone_number, "keyword", answer["keyword"], message_id, None
        )
        await _add(conn, row, by)
    elif change == "remove" and entry is not None:
        await _remove(conn, org_id, entry, by)
    elif change == "claim" and entry is not None and entry["source"] == "api":
        await _claim(conn, org_id, entry, answer["keyword"], message_id, by)
    await remember(conn, request, answer)
    return answer, False
