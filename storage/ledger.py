"""The rows and audit events of the opt-out ledger and of the requests remembered for
idempotency, as both backends store them (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from storage.records import By, Draft, to_json, utcnow

#: What a SQL function of the ledger answers: the answer, and whether it is a replay.
Answered = tuple[dict[str, Any], bool]
#: ``Store.receive_inbound``'s decision (see ``storage.store.InboundDecision``).
InboundDecide = Callable[..., tuple[dict[str, Any], str | None]]
#: ``Store.receive_missed_call``'s decision, with instants as stored text.
MissedCallDecide = Callable[[dict[str, Any], bool, str | None], tuple[dict[str, Any], str | None]]

#: What an OptOut shows, in the published order (the stored row adds organization_id and seq).
OPT_OUT_FIELDS = (
    "phone_number",
    "source",
    "keyword",
    "inbound_message_id",
    "reason",
    "created_at",
)


#: The stored columns of a ledger entry and of a remembered request.
OPT_OUT_COLUMNS = ("organization_id", *OPT_OUT_FIELDS)
REMEMBERED_COLUMNS = ("organization_id", "kind", "id", "fingerprint", "answer", "created_at")


def new_opt_out_row(
    org_id: str,
    phone_number: str,
    source: str,
    keyword: str | None,
    inbound_message_id: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """A new ledger entry's row (its ``seq`` is the database's)."""
    return {
        "organization_id": org_id,
        "phone_number": phone_number,
        "source": source,
        "keyword": keyword,
        "inbound_message_id": inbound_message_id,
        "reason": reason,
        "created_at": utcnow(),
    }


def opt_out_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as the API shows it."""
    return {field: row[field] for field in OPT_OUT_FIELDS}


#: Makes an entry added by hand the contact's own: (keyword, inbound_message_id, organization,
#: number), ``{p}`` the backend's placeholder. Only an ``api`` entry changes, so a claim can
#: never rewrite a keyword entry.
CLAIM_STATEMENT = (
    "UPDATE opt_outs SET source = 'keyword', keyword = {p}, inbound_message_id = {p}"
    " WHERE organization_id = {p} AND phone_number = {p} AND source = 'api'"
)


def claimed(entry: dict[str, Any], keyword: str, inbound_message_id: str) -> dict[str, Any]:
    """An entry added by hand once the contact texted ``keyword``: the contact's own (source
    keyword), its ``created_at`` (first opted out) and ``reason`` kept."""
    return {
        **entry,
        "source": "keyword",
        "keyword": keyword,
        "inbound_message_id": inbound_message_id,
    }


def opt_out_event(
    by: By, org_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Draft:
    """The event of a ledger change, ``changes`` ``{"opt_outs.<number>": {"from": source,
    "to": source}}``: opt_out.created for a new entry (no ``before``, the event at its
    ``created_at``) or one the contact claimed (from ``api`` to ``keyword``, the event now);
    opt_out.deleted for a removed one (no ``after``)."""
    entry = after or before
    assert entry is not None
    type_ = "opt_out.created" if after is not None else "opt_out.deleted"
    change = {
        "from": before["source"] if before else None,
        "to": after["source"] if after else None,
    }
    at = after["created_at"] if after is not None and before is None else None
    return Draft(type_, org_id, by, {f"opt_outs.{entry['phone_number']}": change}, at=at)


class Remembered(NamedTuple):
    """A request remembered for idempotency: the organization, its kind (``inbound``,
    ``missed_call``), its id, and the fingerprint of its payload."""

    org_id: str
    kind: str
    id: str
    fingerprint: str

    def row(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Its row, with the answer given to the first request under its id."""
        return dict(zip(REMEMBERED_COLUMNS, (*self, to_json(answer), utcnow()), strict=True))
