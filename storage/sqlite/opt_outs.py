"""SQL for the opt-out ledger and the requests remembered for idempotency (SQLite).

Every write runs on the single writer in one transaction: the ledger change, its audit event
and the remembered answer commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from storage.errors import IdempotencyConflict, NotFoundError
from storage.records import (
    By,
    from_json,
    new_opt_out_row,
    new_remembered_row,
    opt_out_event,
    opt_out_from_row,
)
from storage.sqlite import audit, organizations

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
    f"INSERT INTO opt_outs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_REMEMBERED_COLUMNS = ("organization_id", "kind", "id", "fingerprint", "answer", "created_at")
_REMEMBER = (
    f"INSERT INTO remembered_requests ({', '.join(_REMEMBERED_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _REMEMBERED_COLUMNS)})"
)


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
        "SELECT * FROM opt_outs WHERE organization_id = ? AND phone_number = ?",
        [org_id, phone_number],
    )
    return opt_out_from_row(row) if row else None


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
    sql = "SELECT * FROM opt_outs WHERE organization_id = ?"
    params: list[Any] = [org_id]
    if before_seq is not None:
        sql += " AND seq < ?"
        params.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT ?"
    params.append(limit + 1)
    rows = list(db.query(sql, params))
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [opt_out_from_row(r) for r in rows[:limit]], next_seq


def _add(db: Database, row: dict[str, Any], by: By) -> dict[str, Any]:
    db.execute(_INSERT, [row[c] for c in _COLUMNS])
    entry = opt_out_from_row(row)
    audit.record(db, opt_out_event(by, row["organization_id"], None, entry))
    return entry


def _remove(db: Database, org_id: str, entry: dict[str, Any], by: By) -> None:
    db.execute(
        "DELETE FROM opt_outs WHERE organization_id = ? AND phone_number = ?",
        [org_id, entry["phone_number"]],
    )
    audit.record(db, opt_out_event(by, org_id, entry, None))


def put(
    db: Database,
    *,
    org_id: str,
    phone_number: str,
    reason: str | None,
    by: By,
) -> tuple[dict[str, Any], bool]:
    """Add an entry by hand (source ``api``): the entry and True, or the existing entry
    unchanged and False (no event)."""
    organizations.read(db, org_id)
    existing = get(db, org_id, phone_number)
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
    return _add(db, row, by), True


def delete(
    db: Database,
    *,
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


def remembered(db: Database, org_id: str, kind: str, request_id: str) -> dict[str, Any] | None:
    """The fingerprint and answer remembered for a request id, or None."""
    row = _row(
        db,
        "SELECT fingerprint, answer FROM remembered_requests"
        " WHERE organization_id = ? AND kind = ? AND id = ?",
        [org_id, kind, request_id],
    )
    return {"fingerprint": row["fingerprint"], "answer": from_json(row["answer"])} if row else None


def replay(
    db: Database, org_id: str, kind: str, request_id: str, fingerprint: str
) -> dict[str, Any] | None:
    """The first answer under this id when the payload is the same; None when the id is new.
    Raises IdempotencyConflict when the id came with another payload."""
    prior = remembered(db, org_id, kind, request_id)
    if prior is None:
        return None
    if prior["fingerprint"] != fingerprint:
        raise IdempotencyConflict(request_id)
    return prior["answer"]


def remember(
    db: Database,
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
    db.execute(_REMEMBER, [row[c] for c in _REMEMBERED_COLUMNS])


def receive_inbound(
    db: Database,
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
    first = replay(db, org_id, "inbound", message_id, fingerprint)
    if first is not None:
        return first, True
    org = organizations.read(db, org_id)
    entry = get(db, org_id, phone_number)
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
        _add(db, row, by)
    elif change == "remove" and entry is not None:
        _remove(db, org_id, entry, by)
    remember(
        db,
        org_id=org_id,
        kind="inbound",
        request_id=message_id,
        fingerprint=fingerprint,
        answer=answer,
    )
    return answer, False
