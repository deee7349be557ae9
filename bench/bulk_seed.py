"""Bench only: bulk-seed an orgsettings database with many organizations, two API keys each.

The CLI (one process and one audited transaction per object) is far too slow for 100,000
organizations, so this copies rows the CLI made: the bench organization and its API key, in a
database orgsettings itself created and migrated, are the templates. Every new organization is a
copy of the template organization row with a new id (UUIDv7, as orgsettings mints them) and
name; every new key a copy of the template key row with a new id (``key_<ULID>``), organization,
hash and prefix. Secrets have the shape ``handlers/api_keys.py`` mints (``am_live_`` and 40
base62 characters) and are stored the way it stores them: the SHA-256 hex digest of the secret,
prefix = its first 12 characters. The template key is looked up by that hash first, so a change
in how orgsettings hashes keys fails here, not as 401s under wrk. All rows go in one transaction;
no audit event is written for them. The secrets go to a file, one per line, for
``lua/random_key.lua``.

Standalone (a throwaway database, then the row counts)::

    .venv/bin/python bench/bulk_seed.py [--orgs N] [DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sqlite3
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ulid import ULID
from uuid6 import uuid7

KEY_PREFIX = "am_live_"
SECRET_LENGTH = 40
PREFIX_LENGTH = len(KEY_PREFIX) + 4
BASE62 = string.ascii_letters + string.digits
# Byte b -> BASE62[b % 62] for b < 248 (uniform); bytes 248-255 are dropped.
_BASE62_TABLE = (BASE62 * 5)[:256].encode("ascii")
_REJECT = bytes(range(248, 256))


def hash_key(secret: str) -> str:
    """The stored form of a key, as handlers/api_keys.py ``hash_key``: SHA-256 hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def mint_secret() -> str:
    """A random key: ``am_live_`` and 40 base62 characters from the OS's CSPRNG."""
    while True:
        chars = secrets.token_bytes(SECRET_LENGTH + 16).translate(_BASE62_TABLE, _REJECT)
        if len(chars) >= SECRET_LENGTH:
            return KEY_PREFIX + chars[:SECRET_LENGTH].decode("ascii")


def _row(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
    cursor = conn.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no row for {sql!r} {params!r}")
    return dict(zip((c[0] for c in cursor.description), row, strict=True))


def _insert(conn: sqlite3.Connection, table: str, columns: list[str], rows: list[tuple]) -> None:
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def bulk_seed(
    db_path: Path,
    *,
    template_org_id: str,
    template_key: str,
    keys_file: Path,
    orgs: int = 100_000,
    keys_per_org: int = 2,
) -> dict[str, Any]:
    """Add ``orgs`` organizations with ``keys_per_org`` keys each, copied from the templates.

    Writes every new secret to ``keys_file`` (one per line) and returns counts and timings.
    """
    began = time.monotonic()
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        # This connection only: no fsync per commit while seeding a throwaway bench database.
        conn.execute("PRAGMA synchronous=OFF")
        org = _row(conn, "SELECT * FROM organizations WHERE id = ?", (template_org_id,))
        key = _row(conn, "SELECT * FROM api_keys WHERE key_hash = ?", (hash_key(template_key),))
        if key["organization_id"] != template_org_id:
            raise ValueError("the template key does not belong to the template organization")
        if key["prefix"] != template_key[:PREFIX_LENGTH]:
            raise ValueError(f"orgsettings stores key prefixes unlike this: {key['prefix']!r}")
        key.update(revoked_at=None, last_used_at=None)
        org_cols, key_cols = list(org), list(key)
        org_rows, key_rows, secrets_out = [], [], []
        for index in range(1, orgs + 1):
            org_id = str(uuid7())
            org.update(id=org_id, name=f"Bench {index:06d}")
            org_rows.append(tuple(org.values()))
            for _ in range(keys_per_org):
                secret = mint_secret()
                secrets_out.append(secret)
                key.update(
                    id=f"key_{ULID()}",
                    organization_id=org_id,
                    key_hash=hash_key(secret),
                    prefix=secret[:PREFIX_LENGTH],
                )
                key_rows.append(tuple(key.values()))
        built = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        try:
            _insert(conn, "organizations", org_cols, org_rows)
            _insert(conn, "api_keys", key_cols, key_rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("organizations", "api_keys")
        }
    finally:
        conn.close()
    keys_file.write_text("\n".join(secrets_out) + "\n")
    return {
        "organizations_added": orgs,
        "keys_added": orgs * keys_per_org,
        "rows": counts,
        "build_s": round(built - began, 2),
        "insert_s": round(time.monotonic() - built, 2),
        "keys_file": str(keys_file),
    }


def main(argv: list[str] | None = None) -> int:
    """Seed a throwaway orgsettings database as the bench does and print the row counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", help="where bench.db goes (default: a temp dir)")
    parser.add_argument("--orgs", type=int, default=100_000)
    args = parser.parse_args(argv)
    from targets import orgsettings_setup

    where = Path(args.dir or tempfile.mkdtemp(prefix="bench-bulk-"))
    where.mkdir(parents=True, exist_ok=True)
    setup = orgsettings_setup(where, random_orgs=args.orgs)
    print(f"database: {where / 'bench.db'}")
    print(f"bench organization: {setup.org_id}")
    print(f"seeding: {setup.seeding}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
