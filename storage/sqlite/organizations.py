"""SQL for organizations: read one with its brand summary, create, and change one."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.errors import NotFoundError
from storage.records import (
    MUTABLE_FIELDS,
    new_org_row,
    org_created_changes,
    org_from_row,
    planned_change,
    utcnow,
)
from storage.sqlite import audit
from storage.store import Actor, Mutator, VersionCheck

_UPDATE_COLUMNS = (*MUTABLE_FIELDS, "updated_at", "version")
_UPDATE = f"UPDATE organizations SET {', '.join(f'{c} = ?' for c in _UPDATE_COLUMNS)} WHERE id = ?"

# The organization and its brand summary in one statement: this runs on every GET and inside
# every write, so it skips sqlite-utils' query wrapper for a plain cursor.
_READ = """
    SELECT o.*,
      (SELECT COUNT(*) FROM brands b WHERE b.organization_id = o.id) AS brand_count,
      (SELECT COALESCE(SUM(campaign_count), 0) FROM brands b
         WHERE b.organization_id = o.id) AS campaign_count,
      COALESCE(
        (SELECT status FROM brands b WHERE b.organization_id = o.id
           ORDER BY CASE status WHEN 'ACTIVE' THEN 0 WHEN 'PENDING' THEN 1 ELSE 2 END
           LIMIT 1),
        'NONE') AS brand
    FROM organizations o WHERE o.id = ?
"""


def read(db: Database, org_id: str) -> dict[str, Any]:
    """The full record of one organization; raises NotFoundError."""
    cursor = db.conn.execute(_READ, [org_id])
    row = cursor.fetchone()
    if row is None:
        raise NotFoundError(org_id)
    record = dict(zip((c[0] for c in cursor.description), row, strict=True))
    registration = {
        "brand": record.pop("brand"),
        "brand_count": record.pop("brand_count"),
        "campaign_count": record.pop("campaign_count"),
    }
    org = org_from_row(record)
    org["registration_status"] = registration
    return org


def find_by_name(db: Database, name: str) -> dict[str, Any] | None:
    """The oldest organization with exactly this name, if any."""
    rows = list(
        db.query("SELECT id FROM organizations WHERE name = ? ORDER BY created_at LIMIT 1", [name])
    )
    return read(db, rows[0]["id"]) if rows else None


def create(
    db: Database,
    *,
    name: str,
    actor: Actor,
    surface: str,
    tenant_type: str,
    plan: str,
    throughput_tier: int,
    request_id: str | None,
) -> dict[str, Any]:
    """Insert an organization with every default and record organization.created."""
    now = utcnow()
    row = new_org_row(
        name=name, plan=plan, throughput_tier=throughput_tier, tenant_type=tenant_type, now=now
    )
    db["organizations"].insert(row)
    org = read(db, row["id"])
    audit.record(
        db,
        type_="organization.created",
        org_id=row["id"],
        actor=actor,
        surface=surface,
        request_id=request_id,
        changes=org_created_changes(org),
        at=now,
    )
    return org


def modify(
    db: Database,
    org_id: str,
    mutate: Mutator,
    *,
    actor: Actor,
    surface: str,
    request_id: str | None,
    if_version: VersionCheck | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read, check, change and audit one organization (see Store.modify_org)."""
    current = read(db, org_id)
    planned = planned_change(current, mutate, if_version)
    if planned is None:
        return current, None
    wanted, attestation, changes, row = planned
    db.execute(_UPDATE, [*(row[c] for c in _UPDATE_COLUMNS), org_id])
    event = audit.record(
        db,
        type_="organization.updated",
        org_id=org_id,
        actor=actor,
        surface=surface,
        request_id=request_id,
        changes=changes,
        attestation=attestation,
        at=row["updated_at"],  # the event is stamped with the change it records
    )
    return {**wanted, "updated_at": row["updated_at"], "version": row["version"]}, event


def set_operator_fields(
    db: Database, org_id: str, fields: dict[str, Any], actor: Actor
) -> dict[str, Any]:
    """Change plan, throughput tier or tenant type, with an organization.updated event."""
    current = read(db, org_id)
    changes = {k: {"from": current[k], "to": v} for k, v in fields.items() if current[k] != v}
    if not changes:
        return current
    now = utcnow()
    db["organizations"].update(
        org_id, {**fields, "updated_at": now, "version": current["version"] + 1}
    )
    audit.record(
        db, type_="organization.updated", org_id=org_id, actor=actor, changes=changes, at=now
    )
    return read(db, org_id)
