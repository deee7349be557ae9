"""SQL for the opt-out ledger and the requests remembered for idempotency (SQLite).

Every write runs on the single writer in one transaction: the ledger change, its audit event
and the remembered answer commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from storage import ledger, records
from storage.errors import IdempotencyConflict, NotFoundError
from storage.records import By
from storage.sqlite import audit, organizations

_INSERT = records.insert_statement("opt_outs", ledger.OPT_OUT_COLUMNS, "?")
_GET = "SELECT * FROM opt_outs WHERE organization_id = ? AND phone_number = ?"
_PAGE = "SELECT * FROM opt_outs WHERE organization_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
_REMEMBER = records.insert_statement("remembered_requests", ledger.REMEMBERED_COLUMNS, "?")


def _row(db: Database, sql: str, params: list[Any]) -> dict[str, Any] | None:
    cursor = db.conn.execute(sql, params)
    values = cursor.fetchone()
    if values is None:
        return None
    return dict(zip((c[0] for c in cursor.description), values, strict=True))


def get(db: Database, org_id: str, phone_number: str) -> dict[str, Any] | None:
    """The ledger entry for one number, or None."""
    row = _row(
        db,
        _GET,
        [org_id, phone_number],
    )
    return ledger.opt_out_from_row(row) if row else None


def opted_out(db: Database, org_id: str, phone_numbers: list[str]) -> set[str]:
    """Which of these numbers are in the ledger (one query, whatever the count)."""
    if not phone_numbers:
        return set()
    marks = ", ".join("?" for _ in phone_numbers)
    cursor = db.conn.execute(
        "SELECT phone_number FROM opt_outs"
        f" WHERE organization_id = ? AND phone_number IN ({marks})",
        [org_id, *phone_numbers],
    )
    return {row[0] for row in cursor.fetchall()}


def page(
    db: Database, org_id: str, *, limit: int, before_seq: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Entries newest first; the page and the seq to continue before, if there are more."""
    before = records.END_SEQ if before_seq is None else before_seq
    rows = list(db.query(_PAGE, [org_id, before, limit + 1]))
    return records.page_of(rows, limit, ledger.opt_out_from_row)


def _add(db: Database, row: dict[str, Any], by: By) -> dict[str, Any]:
    db.execute(_INSERT, [row[c] for c in ledger.OPT_OUT_COLUMNS])
    entry = ledger.opt_out_from_row(row)
    audit.record(db, ledger.opt_out_event(by, row["organization_id"], None, entry))
    return entry


def _remove(db: Database, org_id: str, entry: dict[str, Any], by: By) -> None:
    db.execute(
        "DELETE FROM opt_outs WHERE organization_id = ? AND phone_number = ?",
        [org_id, entry["phone_number"]],
    )
    audit.record(db, ledger.opt_out_event(by, org_id, entry, None))


_CLAIM = ledger.CLAIM_STATEMENT.format(p="?")


def _claim(
    db: Database, org_id: str, entry: dict[str, Any], keyword: str, message_id: str, by: By
) -> None:
    db.execute(_CLAIM, [keyword, message_id, org_id, entry["phone_number"]])
    after = ledger.claimed(entry, keyword, message_id)
    audit.record(db, ledger.opt_out_event(by, org_id, entry, after))


def put(
    db: Database, org_id: str, phone_number: str, reason: str | None, by: By
) -> tuple[dict[str, Any], bool]:
    """Add an entry by hand (source ``api``): the entry and True, or the existing entry
    unchanged and False (no event)."""
    organizations.read(db, org_id)
    existing = get(db, org_id, phone_number)
    if existing is not None:
        return existing, False
    row = ledger.new_opt_out_row(org_id, phone_number, "api", None, None, reason)
    return _add(db, row, by), True


def delete(
    db: Database,
    org_id: str,
    phone_number: str,
    check: Callable[[dict[str, Any]], None],
    by: By,
) -> dict[str, Any]:
    """Remove an entry after ``check`` accepts it; raises NotFoundError."""
    entry = get(db, org_id, phone_number)
    if entry is None:
        raise NotFoundError(phone_number)
    check(entry)
    _remove(db, org_id, entry, by)
    return entry


def replay(db: Database, request: ledger.Remembered) -> dict[str, Any] | None:
    """The first answer under the request's id when its payload is the same; None when the id
    is new. Raises IdempotencyConflict when the id came with another payload."""
    prior = db.conn.execute(
        "SELECT fingerprint, answer FROM remembered_requests"
        " WHERE organization_id = ? AND kind = ? AND id = ?",
        [request.org_id, request.kind, request.id],
    ).fetchone()
    if prior is None:
        return None
    if prior[0] != request.fingerprint:
        raise IdempotencyConflict(request.id)
    return records.from_json(prior[1])


def remember(db: Database, request: ledger.Remembered, answer: dict[str, Any]) -> None:
    """Remember the answer given to a request, in the open transaction."""
    row = request.row(answer)
    db.execute(_REMEMBER, [row[c] for c in ledger.REMEMBERED_COLUMNS])


def receive_inbound(
    db: Database,
    request: ledger.Remembered,
    phone_number: str,
    decide: ledger.InboundDecide,
    by: By,
) -> ledger.Answered:
    """Apply an inbound keyword message to the ledger once: the answer, and whether it is a
    replay of the first answer under its id (see Store.receive_inbound)."""
    org_id, message_id = request.org_id, request.id
    first = replay(db, request)
    if first is not None:
        return first, True
    org = organizations.read(db, org_id)
    entry = get(db, org_id, phone_number)
    answer, change = decide(org, entry)
    if change == "add" and entry is None:
        row = ledger.new_opt_out_row(
            org_id, phone_number, "keyword", answer["keyword"], message_id, None
        )
        _add(db, row, by)
    elif change == "remove" and entry is not None:
        _remove(db, org_id, entry, by)
    elif change == "claim" and entry is not None and entry["source"] == "api":
        _claim(db, org_id, entry, answer["keyword"], message_id, by)
    remember(db, request, answer)
    return answer, False
