"""SQL for missed calls: contact protection and the answers remembered per call (SQLite).

The call runs on the single writer in one transaction: the remembered answer and the
contact-protection record commit together or not at all.
"""

from __future__ import annotations

from sqlite_utils import Database

from storage.ledger import Answered, MissedCallDecide, Remembered
from storage.sqlite import opt_outs, organizations

# The later of two counted calls is kept (calls may be reported out of order).
_UPSERT = """
INSERT INTO missed_call_contacts (organization_id, phone_number, last_sent_at, call_id)
VALUES (?, ?, ?, ?)
ON CONFLICT (organization_id, phone_number) DO UPDATE
SET last_sent_at = excluded.last_sent_at, call_id = excluded.call_id
WHERE excluded.last_sent_at > missed_call_contacts.last_sent_at
"""


def last_sent_at(db: Database, org_id: str, phone_number: str) -> str | None:
    """The ``at`` of the latest call to this number answered send or hold, or None."""
    row = db.conn.execute(
        "SELECT last_sent_at FROM missed_call_contacts"
        " WHERE organization_id = ? AND phone_number = ?",
        [org_id, phone_number],
    ).fetchone()
    return row[0] if row else None


def receive(
    db: Database, request: Remembered, phone_number: str, decide: MissedCallDecide
) -> Answered:
    """Answer a missed call once: the answer, and whether it is a replay of the first answer
    under its id (see Store.receive_missed_call)."""
    org_id, call_id = request.org_id, request.id
    first = opt_outs.replay(db, request)
    if first is not None:
        return first, True
    org = organizations.read(db, org_id)
    opted_out = opt_outs.get(db, org_id, phone_number) is not None
    answer, sent_at = decide(org, opted_out, last_sent_at(db, org_id, phone_number))
    if sent_at is not None:
        db.execute(_UPSERT, [org_id, phone_number, sent_at, call_id])
    opt_outs.remember(db, request, answer)
    return answer, False
