"""SQL for brands: register and delete, each with its audit event."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.errors import NotFoundError
from storage.records import new_brand_row
from storage.sqlite import audit, organizations
from storage.store import Actor


def create(
    db: Database, *, org_id: str, status: str, campaigns: int, actor: Actor
) -> dict[str, Any]:
    """Insert a brand for an organization and record brand.created."""
    row = new_brand_row(org_id=org_id, status=status, campaigns=campaigns)
    organizations.read(db, org_id)
    db["brands"].insert(row)
    audit.record(
        db,
        type_="brand.created",
        org_id=org_id,
        actor=actor,
        changes={"brand": {"from": None, "to": row}},
    )
    return row


def delete(db: Database, brand_id: str, actor: Actor) -> dict[str, Any]:
    """Delete a brand and record brand.deleted; raises NotFoundError."""
    rows = list(db.query("SELECT * FROM brands WHERE id = ?", [brand_id]))
    if not rows:
        raise NotFoundError(brand_id)
    row = rows[0]
    db.execute("DELETE FROM brands WHERE id = ?", [brand_id])
    audit.record(
        db,
        type_="brand.deleted",
        org_id=row["organization_id"],
        actor=actor,
        changes={"brand": {"from": row, "to": None}},
    )
    return row
