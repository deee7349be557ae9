"""SQL for organizations: lock, read one with its brand summary, create, and change one."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.errors import NotFoundError
from storage.postgresql import audit
from storage.records import (
    BOOL_FIELDS,
    MUTABLE_FIELDS,
    OPERATOR_FIELDS,
    By,
    Draft,
    new_org_row,
    operator_changes,
    org_created,
    org_from_read,
    utcnow,
)
from storage.store import Modified, Planner

_UPDATE_COLUMNS = (*MUTABLE_FIELDS, "updated_at", "version")
_UPDATE = (
    f"UPDATE organizations SET {', '.join(f'{c} = %s' for c in _UPDATE_COLUMNS)} WHERE id = %s"
)
_INSERT_COLUMNS = ("id", *MUTABLE_FIELDS, "plan", "throughput_tier", "tenant_type")
_INSERT_COLUMNS += ("created_at", "updated_at", "version")
_INSERT = (
    f"INSERT INTO organizations ({', '.join(_INSERT_COLUMNS)})"
    f" VALUES ({', '.join('%s' for _ in _INSERT_COLUMNS)})"
)

#: The columns of an organization's record (``o``) and its brand summary, for a statement
#: whose FROM clause names ``organizations o`` (``keys.by_hash`` adds the key's columns).
RECORD = """
    SELECT o.*,
      (SELECT COUNT(*) FROM brands b WHERE b.organization_id = o.id) AS brand_count,
      (SELECT COALESCE(SUM(campaign_count), 0)::bigint FROM brands b
         WHERE b.organization_id = o.id) AS campaign_count,
      COALESCE(
        (SELECT status FROM brands b WHERE b.organization_id = o.id
           ORDER BY CASE status WHEN 'ACTIVE' THEN 0 WHEN 'PENDING' THEN 1 ELSE 2 END
           LIMIT 1),
        'NONE') AS brand
"""
_READ = RECORD + " FROM organizations o WHERE o.id = %s"
# Inside a write, after the row lock: the record and the hash its next audit event chains to,
# in one statement (a fresh snapshot, taken after the lock: READ COMMITTED).
_READ_FOR_WRITE = (
    RECORD
    + """, (SELECT hash FROM audit_events a WHERE a.organization_id = o.id
            ORDER BY a.seq DESC LIMIT 1) AS last_hash
    FROM organizations o WHERE o.id = %s"""
)


async def lock(conn: AsyncConnection, org_id: str) -> None:
    """Lock the organization's row until the transaction ends; raises NotFoundError.

    Every write takes this lock first, so writes to one organization run one at a time across
    every instance (a read-check-write never loses an update) and its audit events are
    appended in order. Writes to different organizations do not wait for each other.
    """
    cursor = await conn.execute("SELECT 1 FROM organizations WHERE id = %s FOR UPDATE", [org_id])
    if await cursor.fetchone() is None:
        raise NotFoundError(org_id)


async def lock_owner(conn: AsyncConnection, table: str, record_id: str) -> None:
    """Lock the organization owning ``record_id`` of ``table`` (a key's, a brand's), as
    ``lock``; raises NotFoundError when there is no such record."""
    sql = f"SELECT organization_id FROM {table} WHERE id = %s"  # table: one of ours
    cursor = await conn.execute(sql, [record_id])
    found = await cursor.fetchone()
    if found is None:
        raise NotFoundError(record_id)
    await lock(conn, found["organization_id"])


async def read(conn: AsyncConnection, org_id: str) -> dict[str, Any]:
    """The full record of one organization; raises NotFoundError."""
    cursor = await conn.execute(_READ, [org_id])
    return _record(await cursor.fetchone(), org_id)


async def read_locked(conn: AsyncConnection, org_id: str) -> tuple[dict[str, Any], str | None]:
    """Lock the organization's row (see ``lock``), then read its record and the hash of its
    newest audit event (None before the first)."""
    await lock(conn, org_id)
    cursor = await conn.execute(_READ_FOR_WRITE, [org_id])
    row = await cursor.fetchone()
    last_hash = row.pop("last_hash") if row else None
    return _record(row, org_id), last_hash


def _record(record: dict[str, Any] | None, org_id: str) -> dict[str, Any]:
    if record is None:
        raise NotFoundError(org_id)
    return org_from_read(record)


async def find_by_name(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    """The oldest organization with exactly this name, if any."""
    cursor = await conn.execute(
        "SELECT id FROM organizations WHERE name = %s ORDER BY created_at, id LIMIT 1", [name]
    )
    row = await cursor.fetchone()
    return await read(conn, row["id"]) if row else None


async def create(conn: AsyncConnection, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert an organization with every default but ``fields`` (name, plan, throughput tier,
    tenant type) and record organization.created, its first event."""
    row = _booleans(new_org_row(**fields))
    # No lock: no other transaction sees the row, or can append its events, before COMMIT.
    await conn.execute(_INSERT, [row[c] for c in _INSERT_COLUMNS])
    org = await read(conn, row["id"])
    await audit.record(conn, org_created(by, org), prev_hash=None)
    return org


async def modify(conn: AsyncConnection, org_id: str, plan: Planner, by: By) -> Modified:
    """Lock, read, check, change and audit one organization (see Store.modify_org)."""
    current, last_hash = await read_locked(conn, org_id)  # the latest committed version
    planned = plan(current)
    if planned is None:
        return current, None
    row = _booleans(planned.row)
    await conn.execute(_UPDATE, [*(row[c] for c in _UPDATE_COLUMNS), org_id])
    event = await audit.record(conn, planned.event(by, org_id), prev_hash=last_hash)
    return planned.committed(), event


def _booleans(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its 0/1 fields as the booleans PostgreSQL stores."""
    for field in BOOL_FIELDS:
        row[field] = bool(row[field])
    return row


async def set_operator_fields(
    conn: AsyncConnection, org_id: str, fields: dict[str, Any], by: By
) -> dict[str, Any]:
    """Lock the organization, then change its operator fields (``OPERATOR_FIELDS``, checked by
    the Store), with an organization.updated event."""
    await lock(conn, org_id)
    current = await read(conn, org_id)
    changes = operator_changes(current, fields)
    if not changes:
        return current
    now = utcnow()
    names = [k for k in OPERATOR_FIELDS if k in fields]
    assignments = ", ".join(f"{k} = %s" for k in names)
    await conn.execute(
        f"UPDATE organizations SET {assignments}, updated_at = %s, version = version + 1"
        " WHERE id = %s",
        [*(fields[k] for k in names), now, org_id],
    )
    await audit.record(conn, Draft("organization.updated", org_id, by, changes, at=now))
    return await read(conn, org_id)
