"""SQL for API keys: create, look up by hash, revoke, and record when keys were last used."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from storage.errors import NotFoundError
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
from storage.sqlite import audit, organizations

# The key and its organization's record (as organizations.read has it) in one statement: one
# read for the key check and a GET. A left join: a key whose organization is gone is still
# found, with no organization.
_BY_HASH = (
    organizations.RECORD
    + "".join(f", k.{c} AS {KEY_ALIAS}{c}" for c in KEY_COLUMNS)
    + " FROM api_keys k LEFT JOIN organizations o ON o.id = k.organization_id"
    + " WHERE k.key_hash = ?"
)
# The key alone, for every request that does not answer from its organization's record.
_KEY_BY_HASH = f"SELECT {', '.join(KEY_COLUMNS)} FROM api_keys WHERE key_hash = ?"


def create(db: Database, by: By, fields: dict[str, Any]) -> dict[str, Any]:
    """Insert a key (``fields``: org_id, key_hash, prefix, scopes; its hash only) and record
    api_key.created."""
    row = new_key_row(**fields)
    organizations.read(db, row["organization_id"])
    db["api_keys"].insert(row)
    audit.record(db, key_created(by, row))
    return key_from_row(row)


def by_hash(db: Database, key_hash: str, with_organization: bool) -> dict[str, Any] | None:
    """The key stored under this hash (an indexed lookup, no secret comparison), with its
    organization's record (``organization``; None when it is gone) when asked."""
    cursor = db.conn.execute(_BY_HASH if with_organization else _KEY_BY_HASH, [key_hash])
    row = cursor.fetchone()
    if row is None:
        return None
    named = dict(zip((c[0] for c in cursor.description), row, strict=True))
    return key_with_org_from_read(named) if with_organization else key_from_row(named)


def revoke(db: Database, key_id: str, by: By) -> dict[str, Any]:
    """Revoke a key once; records api_key.revoked the first time."""
    rows = list(db.query("SELECT * FROM api_keys WHERE id = ?", [key_id]))
    if not rows:
        raise NotFoundError(key_id)
    row = rows[0]
    if row["revoked_at"] is None:
        row["revoked_at"] = utcnow()
        db["api_keys"].update(key_id, {"revoked_at": row["revoked_at"]})
        audit.record(db, key_revoked(by, row))
    return key_from_row(row)


def touch(db: Database, used: dict[str, str]) -> None:
    """Set last_used_at for each key id to its time of use, never moving it backwards."""
    db.conn.executemany(
        "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2"
        " AND (last_used_at IS NULL OR last_used_at < ?1)",
        [(when, key_id) for key_id, when in used.items()],
    )
