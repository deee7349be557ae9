"""Plain helpers that turn rows into records and records into rows, and diff two records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
from ulid import ULID
from uuid6 import uuid7

from storage.audit_chain import event_hash
from storage.errors import VersionMismatchError

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


def new_org_row(
    *, name: str, plan: str, throughput_tier: int, tenant_type: str, now: str
) -> dict[str, Any]:
    """A new organization's row: every default, booleans as 0/1, blocks as JSON text."""
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


def org_created_changes(org: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes an organization.created event records."""
    return {
        k: {"from": None, "to": org[k]} for k in ("name", "plan", "throughput_tier", "tenant_type")
    }


def new_key_row(*, org_id: str, key_hash: str, prefix: str, scopes: list[str]) -> dict[str, Any]:
    """A new API key's row: its hash only, never the secret."""
    return {
        "id": f"key_{ULID()}",
        "organization_id": org_id,
        "key_hash": key_hash,
        "prefix": prefix,
        "scopes": to_json(sorted(set(scopes))),
        "created_at": utcnow(),
        "revoked_at": None,
        "last_used_at": None,
    }


def key_created_changes(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes an api_key.created event records (no hash, no secret)."""
    shown = {"id": row["id"], "prefix": row["prefix"], "scopes": from_json(row["scopes"])}
    return {"api_key": {"from": None, "to": shown}}


def key_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """An api_keys row as the store returns it: without its hash, scopes decoded."""
    key = {k: v for k, v in row.items() if k != "key_hash"}
    key["scopes"] = from_json(row["scopes"])
    return key


def new_brand_row(*, org_id: str, status: str, campaigns: int) -> dict[str, Any]:
    """A new brand's row."""
    return {
        "id": f"brand_{ULID()}",
        "organization_id": org_id,
        "status": status,
        "campaign_count": campaigns,
        "created_at": utcnow(),
    }


def new_event_row(
    *,
    type_: str,
    org_id: str,
    actor: dict[str, Any],
    surface: str,
    request_id: str | None,
    changes: dict[str, Any],
    attestation: str | None,
    at: str | None,
    prev_hash: str | None,
) -> dict[str, Any]:
    """A new audit event's row (JSON columns as text), chained to ``prev_hash`` and hashed
    (see storage.audit_chain)."""
    row = {
        "id": str(ULID()),
        "type": type_,
        "organization_id": org_id,
        "actor": to_json(actor),
        "surface": surface,
        "request_id": request_id,
        "changes": to_json(changes),
        "attestation": attestation,
        "created_at": at or utcnow(),
        "prev_hash": prev_hash,
    }
    row["hash"] = event_hash(event_from_row({**row, "hash": None}))
    return row


def planned_change(
    current: dict[str, Any],
    mutate: Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]],
    if_version: Callable[[int], bool] | None,
) -> tuple[dict[str, Any], str | None, dict[str, Any], dict[str, Any]] | None:
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
    return wanted, attestation, changes, row
