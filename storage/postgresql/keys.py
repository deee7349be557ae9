"""SQL for API keys: create, look up by hash, revoke, and record when keys were last used."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.errors import NotFoundError
from storage.postgresql import audit, organizations
from storage.records import (
    KEY_ALIAS,
    KEY_COLUMNS,
    By,
    key_created,
    key_from_row,
    key_revoked,
    key_with_org_from_read,
    new_key_row,
    utcnow,
)

_INSERT = (
    f"INSERT INTO api_keys ({', '.join(KEY_COLUMNS)})"
    f" VALUES ({', '.join('%s' for _ in KEY_COLUMNS)})"
)
# The key and its organization's record (as organizations.read has it) in one statement: one
# round trip for the key check and a GET, from one snapshot. A left join: a key whose
# organization is gone is still found, with no organization.
_BY_HASH = (
    organizations.RECORD
    + "".join(f", k.{c} AS {KEY_ALIAS}{c}" for c in KEY_COLUMNS)
    + " FROM api_keys k LEFT JOIN organizations o ON o.id = k.organization_id"
    + " WHERE k.key_hash = %s"
)
# The key alone, for every request that does not answer from its organization's record.
_KEY_BY_HASH = f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys WHERE key_hash = %s"


async def create(conn: AsyncConnection, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert a key (``fields``: org_id, key_hash, prefix, scopes; its hash only) and record
    api_key.created."""
    row = new_key_row(**fields)
    await organizations.lock(conn, row["organization_id"])
    await conn.execute(_INSERT, [row[c] for c in KEY_COLUMNS])
    await audit.record(conn, key_created(by, row))
    return key_from_row(row)


async def by_hash(
    conn: AsyncConnection, key_hash: str, with_organization: bool
) -> dict[str, Any] | None:
    """The key stored under this hash (an indexed lookup, no secret comparison), with its
    organization's record (``organization``; None when it is gone) when asked."""
    cursor = await conn.execute(_BY_HASH if with_organization else _KEY_BY_HASH, [key_hash])
    row = await cursor.fetchone()
    if row is None:
        return None
    return key_with_org_from_read(row) if with_organization else key_from_row(row)


async def revoke(conn: AsyncConnection, key_id: str, by: By) -> dict[str, Any]:
    """Revoke a key once; records api_key.revoked the first time."""
    # The organization's lock first, as every write takes it; then the key, as it is now.
    await organizations.lock_owner(conn, "api_keys", key_id)
    cursor = await conn.execute(
        f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys WHERE id = %s", [key_id]
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFoundError(key_id)
    if row["revoked_at"] is None:
        row["revoked_at"] = utcnow()
        await conn.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE id = %s", [row["revoked_at"], key_id]
        )
        await audit.record(conn, key_revoked(by, row))
    return key_from_row(row)


async def touch(conn: AsyncConnection, used: dict[str, str]) -> None:
    """Set last_used_at for each key id to its time of use, never moving it backwards (another
    instance may have written a later use already)."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "UPDATE api_keys SET last_used_at = %(at)s WHERE id = %(id)s"
            " AND (last_used_at IS NULL OR last_used_at < %(at)s)",
            [{"at": when, "id": key_id} for key_id, when in sorted(used.items())],
        )
