"""SQL for brands: register and delete, each with its audit event, under the organization's
row lock."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.errors import NotFoundError
from storage.postgresql import audit, organizations
from storage.records import By, brand_event, new_brand_row

_COLUMNS = ("id", "organization_id", "status", "campaign_count", "created_at")
_INSERT = f"INSERT INTO brands ({', '.join(_COLUMNS)}) VALUES (%s, %s, %s, %s, %s)"


async def create(conn: AsyncConnection, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert a brand (``fields``: org_id, status, campaigns) and record brand.created."""
    row = new_brand_row(**fields)
    await organizations.lock(conn, row["organization_id"])
    await conn.execute(_INSERT, [row[c] for c in _COLUMNS])
    await audit.record(conn, brand_event(by, None, row))
    return row


async def delete(conn: AsyncConnection, brand_id: str, by: By) -> dict[str, Any]:
    """Delete a brand and record brand.deleted; raises NotFoundError."""
    await organizations.lock_owner(conn, "brands", brand_id)
    cursor = await conn.execute(
        f"DELETE FROM brands WHERE id = %s RETURNING {', '.join(_COLUMNS)}", [brand_id]
    )
    row = await cursor.fetchone()
    if row is None:  # deleted by another instance while this one waited for the lock
        raise NotFoundError(brand_id)
    await audit.record(conn, brand_event(by, row, None))
    return row
