"""The audit trail's hash chain: what each event's ``hash`` is, and how to check a chain.

Every event carries ``prev_hash`` (the ``hash`` of the previous event of the same
organization, or null for its first) and ``hash``: the lowercase hex SHA-256 of the UTF-8 bytes
of the canonical JSON of the event's ``CHAINED_FIELDS`` (``prev_hash`` included, ``hash`` and
``seq`` not). Canonical JSON: object keys sorted by Unicode code point at every level, no
whitespace between tokens, strings as UTF-8 (no ``\\u`` escapes except those JSON requires),
integers in plain decimal, ``true``/``false``/``null``. Changing any field of any event, or
removing or inserting an event, breaks the chain from there on. The rules have no I/O, so
``orgsettings audit verify``, the storage backends and a client checking ``GET
/v1/audit_events`` all use the same two functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

CHAINED_FIELDS = (
    "id",
    "type",
    "organization_id",
    "actor",
    "surface",
    "request_id",
    "changes",
    "attestation",
    "created_at",
    "prev_hash",
)


def canonical(event: dict[str, Any]) -> bytes:
    """The canonical JSON bytes of an event's chained fields."""
    content = {name: event[name] for name in CHAINED_FIELDS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def event_hash(event: dict[str, Any]) -> str:
    """The ``hash`` an event must carry, given its other fields and its ``prev_hash``."""
    return hashlib.sha256(canonical(event)).hexdigest()


def first_break(events: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], str] | None:
    """The first event (oldest first, one organization) whose chain is broken, with why."""
    previous: str | None = None
    for event in events:
        if event["prev_hash"] != previous:
            return event, "prev_hash is not the hash of the previous event"
        if event["hash"] != event_hash(event):
            return event, "hash does not match the event's content"
        previous = event["hash"]
    return None


def verdict(chains: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The result of checking several organizations' chains (each oldest first)."""
    broken = None
    for events in chains:
        found = first_break(events)
        if found is not None:
            event, reason = found
            broken = {"id": event["id"], "organization_id": event["organization_id"]}
            broken["reason"] = reason
            break
    return {
        "organizations": len(chains),
        "events": sum(len(events) for events in chains),
        "broken": broken,
    }
