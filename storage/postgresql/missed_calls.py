"""SQL for missed calls: contact protection and the answers remembered per call (PostgreSQL).

The call locks the organization's row first (``organizations.lock``), like every write: two
instances receiving the same call, or two calls from one number, run one after the other, and
the second finds the remembered answer (or the contact-protection record) the first made.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from storage.ledger import Answered, MissedCallDecide, Remembered
from storage.postgresql import opt_outs, organizations

# The later of two counted calls is kept (calls may be reported out of order).
_UPSERT = """
INSERT INTO missed_call_contacts (organization_id, phone_number, last_sent_at, call_id)
VALUES (%s, %s, %s, %s)
ON CONFLICT (organization_id, phone_number) DO UPDATE
SET last_sent_at = excluded.last_sent_at, call_id = excluded.call_id
WHERE excluded.last_sent_at > missed_call_contacts.last_sent_at
"""


async def last_sent_at(conn: AsyncConnection, org_id: str, phone_number: str) -> str | None:
    """The ``at`` of the latest call to this number answered send or hold, or None."""
    cursor = await conn.execute(
        "SELECT last_sent_at FROM missed_call_contacts"
        " WHERE organization_id = %s AND phone_number = %s",
        [org_id, phone_number],
    )
    row = await cursor.fetchone()
    return row["last_sent_at"] if row else None


async def receive(
    conn: AsyncConnection, request: Remembered, phone_number: str, decide: MissedCallDecide
) -> Answered:
    """Answer a missed call once: the answer, and whether it is a replay of the first answer
    under its id (see Store.receive_missed_call)."""
    org_id, call_id = request.org_id, request.id
    await organizations.lock(conn, org_id)
    first = await opt_outs.replay(conn, request)
    if first is not None:
        return first, True
    org = await organizations.read(conn, org_id)
    opted_out = await opt_outs.get(conn, org_id, phone_number) is not None
    answer, sent_at = decide(org, opted_out, await last_sent_at(conn, org_id, phone_number))
    if sent_at is not None:
        await conn.execute(_UPSERT, [org_id, phone_number, sent_at, call_id])
    await opt_outs.remember(conn, request, answer)
    return answer, False
