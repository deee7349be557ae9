"""Plain helpers that turn rows into records and records into rows, and diff two records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson
from uuid6 import uuid7

from storage.audit_chain import event_hash
from storage.errors import VersionMismatchError
from storage.ulids import new_ulid

QUIET_HOURS_DEFAULT = {"enabled": False, "start": "21:00", "end": "08:00", "mode": "reject"}
AUTO_REPLIES_DEFAULT = {"enabled": True, "stop_text": None, "help_text": None, "start_text": None}

#: Columns holding a JSON object, merged block by block.
BLOCK_FIELDS = ("quiet_hours", "auto_replies")
BLOCK_DEFAULTS = {"quiet_hours": QUIET_HOURS_DEFAULT, "auto_replies": AUTO_REPLIES_DEFAULT}
#: Columns stored as 0/1 and shown as booleans.
BOOL_FIELDS = ("is_reseller", "missed_call_auto_message_enabled")
#: Every field a surface or the CLI may change after creation; the rest are server-managed.
MUTABLE_FIELDS = (
    "name",
    "billing_email",
    "message_retention_days",
    "mms_retention_days",
    "is_reseller",
    "quiet_hours",
    "auto_replies",
    "contact_protection_period",
    "missed_call_message",
    "missed_call_auto_message_enabled",
)

#: The operator-only fields ``Store.set_operator_fields`` may change (never from a request).
OPERATOR_FIELDS = ("plan", "throughput_tier", "tenant_type")


class By(NamedTuple):
    """Who makes a change, and through what: the actor, surface and request id its audit
    event records."""

    actor: dict[str, Any]
    surface: str = "cli"
    request_id: str | None = None


class Draft(NamedTuple):
    """An audit event before it is chained: what happened to which organization, by whom;
    ``at`` None is the time it is recorded."""

    type: str
    org_id: str
    by: By
    changes: dict[str, Any]
    attestation: str | None = None
    at: str | None = None


def to_json(value: Any) -> str:
    """The stored text of a JSON column: compact, keys sorted (orjson, ~10x json.dumps)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def from_json(text: str | bytes) -> Any:
    """A JSON column's value (orjson)."""
    return orjson.loads(text)


def utcnow() -> str:
    """Now as an RFC 3339 UTC timestamp with millisecond precision."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def copy_org(org: dict[str, Any]) -> dict[str, Any]:
    """A copy of a record deep enough to change freely (its values are flat or one level of
    blocks), much cheaper than copy.deepcopy on the write path."""
    copied = dict(org)
    for field in (*BLOCK_FIELDS, "registration_status"):
        if field in copied:
            copied[field] = dict(copied[field])
    return copied


def org_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """Decode an organizations row into a record (booleans, nested blocks)."""
    org = dict(row)
    for field in BOOL_FIELDS:
        org[field] = bool(org[field])
    for field, default in BLOCK_DEFAULTS.items():
        stored = from_json(org[field])
        # Stored with sorted keys; shown in the published order (enabled, start, end, mode).
        org[field] = {key: stored[key] for key in default if key in stored}
    return org


def org_from_read(row: dict[str, Any]) -> dict[str, Any]:
    """An organizations row read with its brand summary (``brand``, ``brand_count``,
    ``campaign_count``) as a record with its ``registration_status``."""
    row = dict(row)
    registration = {k: row.pop(k) for k in ("brand", "brand_count", "campaign_count")}
    org = org_from_row(row)
    org["registration_status"] = registration
    return org


def org_to_row(org: dict[str, Any]) -> dict[str, Any]:
    """Encode a record's mutable fields for the organizations table."""
    row: dict[str, Any] = {}
    for field in MUTABLE_FIELDS:
        value = org[field]
        if field in BOOL_FIELDS:
            value = int(bool(value))
        elif field in BLOCK_FIELDS:
            value = to_json(value)
        row[field] = value
    return row


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Changed mutable fields as ``{"dotted.path": {"from": old, "to": new}}``.

    Blocks are compared key by key, so a change to ``quiet_hours.start`` is recorded as that
    path alone. Booleans and integers never compare equal across types (``True != 1`` here).
    """
    changes: dict[str, dict[str, Any]] = {}
    for field in MUTABLE_FIELDS:
        old, new = before[field], after[field]
        if field in BLOCK_FIELDS:
            for key in sorted(set(old) | set(new)):
                if not _same(old.get(key), new.get(key)):
                    changes[f"{field}.{key}"] = {"from": old.get(key), "to": new.get(key)}
        elif not _same(old, new):
            changes[field] = {"from": old, "to": new}
    return changes


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def event_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """Decode an audit_events row into the event shape both surfaces show."""
    return {
        "id": row["id"],
        "type": row["type"],
        "organization_id": row["organization_id"],
        "actor": from_json(row["actor"]),
        "surface": row["surface"],
        "request_id": row["request_id"],
        "changes": from_json(row["changes"]),
        "attestation": row["attestation"],
        "created_at": row["created_at"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


# -- new records, as both backends store them ---------------------------------------------------


def new_org_row(*, name: str, plan: str, throughput_tier: int, tenant_type: str) -> dict[str, Any]:
    """A new organization's row, created now: every default, booleans as 0/1, blocks as JSON
    text."""
    now = utcnow()
    return {
        "id": str(uuid7()),
        "name": name,
        "billing_email": None,
        "plan": plan,
        "throughput_tier": throughput_tier,
        "tenant_type": tenant_type,
        "message_retention_days": 90,
        "mms_retention_days": 30,
        "is_reseller": 0,
        "quiet_hours": to_json(QUIET_HOURS_DEFAULT),
        "auto_replies": to_json(AUTO_REPLIES_DEFAULT),
        "contact_protection_period": 0,
        "missed_call_message": None,
        "missed_call_auto_message_enabled": 0,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def org_created(by: By, org: dict[str, Any]) -> Draft:
    """The organization.created event of a new organization, stamped with its creation."""
    fields = ("name", "plan", "throughput_tier", "tenant_type")
    changes = {k: {"from": None, "to": org[k]} for k in fields}
    return Draft("organization.created", org["id"], by, changes, at=org["created_at"])


def operator_changes(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The changes ``Store.set_operator_fields`` makes to ``current`` (none: an empty dict)."""
    return {k: {"from": current[k], "to": v} for k, v in fields.items() if current[k] != v}


def new_key_row(*, org_id: str, key_hash: str, prefix: str, scopes: list[str]) -> dict[str, Any]:
    """A new API key's row: its hash only, never the secret."""
    return {
        "id": f"key_{new_ulid()}",
        "organization_id": org_id,
        "key_hash": key_hash,
        "prefix": prefix,
        "scopes": to_json(sorted(set(scopes))),
        "created_at": utcnow(),
        "revoked_at": None,
        "last_used_at": None,
    }


def key_created(by: By, row: dict[str, Any]) -> Draft:
    """The api_key.created event of a new key's row (no hash, no secret)."""
    shown = {"id": row["id"], "prefix": row["prefix"], "scopes": from_json(row["scopes"])}
    return Draft(
        "api_key.created", row["organization_id"], by, {"api_key": {"from": None, "to": shown}}
    )


def key_revoked(by: By, row: dict[str, Any]) -> Draft:
    """The api_key.revoked event of a key's row, just revoked."""
    changes = {"api_key.revoked_at": {"from": None, "to": row["revoked_at"]}}
    return Draft("api_key.revoked", row["organization_id"], by, changes)


#: The api_keys table's columns, in its order.
KEY_COLUMNS = (
    "id",
    "organization_id",
    "key_hash",
    "prefix",
    "scopes",
    "created_at",
    "revoked_at",
    "last_used_at",
)
#: The key lookup reads the key's columns under this prefix beside its organization's record.
KEY_ALIAS = "api_key__"


def key_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """An api_keys row as the store returns it: without its hash, scopes decoded."""
    key = {k: v for k, v in row.items() if k != "key_hash"}
    key["scopes"] = from_json(row["scopes"])
    return key


def key_with_org_from_read(row: dict[str, Any]) -> dict[str, Any]:
    """A key row read with its organization's record (the key's columns named ``KEY_ALIAS`` +
    column, the others as an organization read has them) as the key record with
    ``organization``: that organization's record, or None when there is none (a left join
    found no row)."""
    org_row: dict[str, Any] = {}
    key_row: dict[str, Any] = {}
    for name, value in row.items():
        if name.startswith(KEY_ALIAS):
            key_row[name.removeprefix(KEY_ALIAS)] = value
        else:
            org_row[name] = value
    key = key_from_row(key_row)
    key["organization"] = None if org_row["id"] is None else org_from_read(org_row)
    return key


def brand_event(by: By, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Draft:
    """The brand.created (no ``before``) or brand.deleted (no ``after``) event of a brand row."""
    row = after or before
    assert row is not None
    type_ = "brand.created" if after is not None else "brand.deleted"
    return Draft(type_, row["organization_id"], by, {"brand": {"from": before, "to": after}})


def new_brand_row(*, org_id: str, status: str, campaigns: int) -> dict[str, Any]:
    """A new brand's row."""
    return {
        "id": f"brand_{new_ulid()}",
        "organization_id": org_id,
        "status": status,
        "campaign_count": campaigns,
        "created_at": utcnow(),
    }


def new_event_row(draft: Draft, prev_hash: str | None) -> dict[str, Any]:
    """A new audit event's row (JSON columns as text), chained to ``prev_hash`` and hashed
    (see storage.audit_chain)."""
    row = {
        "id": new_ulid(),
        "type": draft.type,
        "organization_id": draft.org_id,
        "actor": to_json(draft.by.actor),
        "surface": draft.by.surface,
        "request_id": draft.by.request_id,
        "changes": to_json(draft.changes),
        "attestation": draft.attestation,
        "created_at": draft.at or utcnow(),
        "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(event_from_row({**row, "hash": None}))
    return row


def chains_of(rows: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Event rows (in seq order) as one list of events per organization, for verification."""
    chains: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        event = event_from_row(row)
        chains.setdefault(event["organization_id"], []).append(event)
    return list(chains.values())


#: Above every event's seq: the start of the first page of events.
END_SEQ = 2**63 - 1


def page_of(
    rows: list[dict[str, Any]],
    limit: int,
    decode: Callable[[dict[str, Any]], dict[str, Any]] = event_from_row,
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit + 1`` rows, newest first (audit events, or what ``decode`` reads), as a
    page and the seq to continue before (None when there are no more)."""
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [decode(r) for r in rows[:limit]], next_seq


class Planned(NamedTuple):
    """What ``Store.modify_org`` writes (see ``planned_change``)."""

    wanted: dict[str, Any]
    attestation: str | None
    changes: dict[str, Any]
    row: dict[str, Any]

    def event(self, by: By, org_id: str) -> Draft:
        """The organization.updated event, stamped with the change it records."""
        at = self.row["updated_at"]
        return Draft("organization.updated", org_id, by, self.changes, self.attestation, at)

    def committed(self) -> dict[str, Any]:
        """The record as this change commits it."""
        return {**self.wanted, "updated_at": self.row["updated_at"], "version": self.row["version"]}


def planned_change(
    current: dict[str, Any],
    mutate: Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]],
    if_version: Callable[[int], bool] | None,
) -> Planned | None:
    """What ``Store.modify_org`` writes over ``current``, in either backend: the wanted record,
    its attestation, the changes (see ``diff``) and the row of its new values (version and
    updated_at set); None when nothing changes. Raises VersionMismatchError when ``if_version``
    refuses the current version, and whatever ``mutate`` raises to reject the change."""
    if if_version is not None and not if_version(current["version"]):
        raise VersionMismatchError(current)
    wanted, attestation = mutate(copy_org(current))
    changes = diff(current, wanted)
    if not changes:
        return None
    row = org_to_row(wanted)
    row["updated_at"] = utcnow()
    row["version"] = current["version"] + 1
    return Planned(wanted, attestation, changes, row)


def insert_statement(table: str, columns: tuple[str, ...], mark: str) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` with the dialect's placeholder ``mark``."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
