"""Developer API (/v1): the organization's audit trail, newest first, cursor-paged."""

from __future__ import annotations

from typing import Any

from handlers.services import Services
from handlers.v1.cursors import Cursor

CURSOR = Cursor("ae1:")


async def list_audit_events(
    services: Services, token_info: dict[str, Any], limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """GET /v1/audit_events."""
    before = CURSOR.decode(cursor) if cursor is not None else None
    events, next_seq = await services.store.list_events(
        token_info["organization_id"], limit=limit, before_seq=before
    )
    return CURSOR.page(events, next_seq)
