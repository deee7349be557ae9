"""SQL for organizations: read one with its brand summary, create, and change one."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.errors import NotFoundError
from storage.records import (
    MUTABLE_FIELDS,
    By,
    Draft,
    new_org_row,
    operator_changes,
    org_created,
    org_from_read,
    utcnow,
)
from storage.sqlite import audit
from storage.store import Modified, Planner

_UPDATE_COLUMNS = (*MUTABLE_FIELDS, "updated_at", "version")
_UPDATE = f"UPDATE organizations SET {', '.join(f'{c} = ?' for c in _UPDATE_COLUMNS)} WHERE id = ?"

#: The columns of an organization's record (``o``) and its brand summary; with a FROM clause
#: naming ``organizations o``, one statement (``read``; ``keys.by_hash`` adds the key's). This
#: runs on every GET and inside every write, so it skips sqlite-utils' query wrapper for a
#: plain cursor.
RECORD = """
    SELECT o.*,
      (SELECT COUNT(*) FROM brands b WHERE b.organization_id = o.id) AS brand_count,
      (SELECT COALESCE(SUM(campaign_count), 0) FROM brands b
         WHERE b.organization_id = o.id) AS campaign_count,
      COALESCE(
        (SELECT status FROM brands b WHERE b.organization_id = o.id
           ORDER BY CASE status WHEN 'ACTIVE' THEN 0 WHEN 'PENDING' THEN 1 ELSE 2 END
           LIMIT 1),
        'NONE') AS brand
"""
_READ = RECORD + " FROM organizations o WHERE o.id = ?"


def read(db: Database, org_id: str) -> dict[str, Any]:
    """The full record of one organization; raises NotFoundError."""
    cursor = db.conn.execute(_READ, [org_id])
    row = cursor.fetchone()
    if row is None:
        raise NotFoundError(org_id)
    return org_from_read(dict(zip((c[0] for c in cursor.description), row, strict=True)))


def find_by_name(db: Database, name: str) -> dict[str, Any] | None:
    """The oldest organization with exactly this name, if any."""
    rows = list(
        db.query("SELECT id FROM organizations WHERE name = ? ORDER BY created_at LIMIT 1", [name])
    )
    return read(db, rows[0]["id"]) if rows else None


def create(db: Database, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert an organization with every default but ``fields`` (name, plan, throughput tier,
    tenant type) and record organization.created."""
    row = new_org_row(**fields)
    db["organizations"].insert(row)
    org = read(db, row["id"])
    audit.record(db, org_created(by, org))
    return org


def modify(db: Database, org_id: str, plan: Planner, by: By) -> Modified:
    """Read, check, change and audit one organization (see Store.modify_org)."""
    current = read(db, org_id)
    planned = plan(current)
    if planned is None:
        return current, None
    db.execute(_UPDATE, [*(planned.row[c] for c in _UPDATE_COLUMNS), org_id])
    return planned.committed(), audit.record(db, planned.event(by, org_id))


def set_operator_fields(
    db: Database, org_id: str, fields: dict[str, Any], by: By
) -> dict[str, Any]:
    """Change plan, throughput tier or tenant type, with an organization.updated event."""
    current = read(db, org_id)
    changes = operator_changes(current, fields)
    if not changes:
        return current
    now = utcnow()
    db["organizations"].update(
        org_id, {**fields, "updated_at": now, "version": current["version"] + 1}
    )
    audit.record(db, Draft("organization.updated", org_id, by, changes, at=now))
    return read(db, org_id)
