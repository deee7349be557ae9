"""SQL for API keys: create, look up by hash, revoke, and record when keys were last used."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from storage.errors import NotFoundError
from storage.postgresql import audit, organizations
from storage.records import key_created_changes, key_from_row, new_key_row, utcnow
from storage.store import Actor

_COLUMNS = (
    "id",
    "organization_id",
    "key_hash",
    "prefix",
    "scopes",
    "created_at",
    "revoked_at",
    "last_used_at",
)
_INSERT = (
    f"INSERT INTO api_keys ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)})"
)


async def create(
    conn: AsyncConnection,
    *,
    org_id: str,
    key_hash: str,
    prefix: str,
    scopes: list[str],
    actor: Actor,
) -> dict[str, Any]:
    """Insert a key (its hash only) and record api_key.created."""
    row = new_key_row(org_id=org_id, key_hash=key_hash, prefix=prefix, scopes=scopes)
    await organizations.lock(conn, org_id)
    await conn.execute(_INSERT, [row[c] for c in _COLUMNS])
    await audit.record(
        conn, type_="api_key.created", org_id=org_id, actor=actor, changes=key_created_changes(row)
    )
    return key_from_row(row)


async def by_hash(conn: AsyncConnection, key_hash: str) -> dict[str, Any] | None:
    """The key stored under this hash (an indexed lookup, no secret comparison)."""
    cursor = await conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM api_keys WHERE key_hash = %s", [key_hash]
    )
    row = await cursor.fetchone()
    return key_from_row(row) if row else None


async def revoke(conn: AsyncConnection, key_id: str, actor: Actor) -> dict[str, Any]:
    """Revoke a key once; records api_key.revoked the first time."""
    cursor = await conn.execute("SELECT organization_id FROM api_keys WHERE id = %s", [key_id])
    found = await cursor.fetchone()
    if found is None:
        raise NotFoundError(key_id)
    # The organization's lock first, as every write takes it; then the key, as it is now.
    await organizations.lock(conn, found["organization_id"])
    cursor = await conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM api_keys WHERE id = %s", [key_id]
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFoundError(key_id)
    if row["revoked_at"] is None:
        row["revoked_at"] = utcnow()
        await conn.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE id = %s", [row["revoked_at"], key_id]
        )
        await audit.record(
            conn,
            type_="api_key.revoked",
            org_id=row["organization_id"],
            actor=actor,
            changes={"api_key.revoked_at": {"from": None, "to": row["revoked_at"]}},
        )
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
