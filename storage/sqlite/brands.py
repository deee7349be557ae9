"""SQL for brands: register and delete, each with its audit event."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.errors import NotFoundError
from storage.records import By, brand_event, new_brand_row
from storage.sqlite import audit, organizations


def create(db: Database, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert a brand (``fields``: org_id, status, campaigns) and record brand.created."""
    row = new_brand_row(**fields)
    organizations.read(db, row["organization_id"])
    db["brands"].insert(row)
    audit.record(db, brand_event(by, None, row))
    return row


def delete(db: Database, brand_id: str, by: By) -> dict[str, Any]:
    """Delete a brand and record brand.deleted; raises NotFoundError."""
    rows = list(db.query("SELECT * FROM brands WHERE id = ?", [brand_id]))
    if not rows:
        raise NotFoundError(brand_id)
    db.execute("DELETE FROM brands WHERE id = ?", [brand_id])
    audit.record(db, brand_event(by, rows[0], None))
    return rows[0]
