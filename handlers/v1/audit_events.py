"""Developer API (/v1): the organization's audit trail, newest first, cursor-paged."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from handlers.errors import ValidationFailed
from handlers.services import Services

CURSOR_PREFIX = "ae1:"


def encode_cursor(seq: int) -> str:
    """An opaque cursor for 'events before this one'."""
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for; a cursor this server did not make is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith(CURSOR_PREFIX):
            seq = int(raw[len(CURSOR_PREFIX) :])
            if 0 < seq < 2**63:
                return seq
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationFailed(details={"cursor": "is not a cursor returned by this API"})


async def list_audit_events(
    services: Services, token_info: dict[str, Any], limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """GET /v1/audit_events."""
    before = decode_cursor(cursor) if cursor is not None else None
    events, next_seq = await services.store.list_events(
        token_info["organization_id"], limit=limit, before_seq=before
    )
    return {
        "success": True,
        "data": events,
        "has_more": next_seq is not None,
        "next_cursor": encode_cursor(next_seq) if next_seq is not None else None,
    }
