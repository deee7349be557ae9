"""SQL for brands: register and delete, each with its audit event."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.errors import NotFoundError
from storage.postgresql import audit, organizations
from storage.records import new_brand_row
from storage.store import Actor

_COLUMNS = ("id", "organization_id", "status", "campaign_count", "created_at")


async def create(
    conn: AsyncConnection, *, org_id: str, status: str, campaigns: int, actor: Actor
) -> dict[str, Any]:
    """Insert a brand for an organization and record brand.created."""
    row = new_brand_row(org_id=org_id, status=status, campaigns=campaigns)
    await organizations.lock(conn, org_id)
    await conn.execute(
        f"INSERT INTO brands ({', '.join(_COLUMNS)}) VALUES (%s, %s, %s, %s, %s)",
        [row[c] for c in _COLUMNS],
    )
    await audit.record(
        conn,
        type_="brand.created",
        org_id=org_id,
        actor=actor,
        changes={"brand": {"from": None, "to": row}},
    )
    return row


async def delete(conn: AsyncConnection, brand_id: str, actor: Actor) -> dict[str, Any]:
    """Delete a brand and record brand.deleted; raises NotFoundError."""
    cursor = await conn.execute("SELECT organization_id FROM brands WHERE id = %s", [brand_id])
    found = await cursor.fetchone()
    if found is None:
        raise NotFoundError(brand_id)
    await organizations.lock(conn, found["organization_id"])
    cursor = await conn.execute(
        f"DELETE FROM brands WHERE id = %s RETURNING {', '.join(_COLUMNS)}", [brand_id]
    )
    row = await cursor.fetchone()
    if row is None:  # deleted by another instance while this one waited for the lock
        raise NotFoundError(brand_id)
    await audit.record(
        conn,
        type_="brand.deleted",
        org_id=row["organization_id"],
        actor=actor,
        changes={"brand": {"from": row, "to": None}},
    )
    return row
