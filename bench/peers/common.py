"""SQLite work shared by the Connexion and FastAPI peers: one organization row, one API key.

The peers do the same storage work orgsettings does per request, minus its audit trail: WAL,
``synchronous=FULL``, look the bearer key's SHA-256 up in ``api_keys``, read the row, and for a
write ``BEGIN IMMEDIATE``, read, update, commit. Writers in one process queue on a thread lock
before they touch SQLite, so no peer spins on ``SQLITE_BUSY`` (orgsettings does the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

DB_ENV = "BENCH_PEER_DB"

SCHEMA = """
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    billing_email TEXT,
    plan TEXT NOT NULL DEFAULT 'payg',
    throughput_tier INTEGER NOT NULL DEFAULT 1,
    tenant_type TEXT NOT NULL DEFAULT 'commercial',
    message_retention_days INTEGER NOT NULL DEFAULT 90,
    mms_retention_days INTEGER NOT NULL DEFAULT 30,
    is_reseller INTEGER NOT NULL DEFAULT 0,
    quiet_hours TEXT NOT NULL,
    auto_replies TEXT NOT NULL,
    contact_protection_period INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    revoked_at TEXT
);
"""

QUIET_HOURS = {"enabled": False, "start": "21:00", "end": "08:00", "mode": "reject"}
AUTO_REPLIES = {"enabled": True, "stop_text": None, "help_text": None, "start_text": None}
REGISTRATION = {"brand": "NONE", "brand_count": 0, "campaign_count": 0}
SETTABLE = ("name", "billing_email", "message_retention_days", "mms_retention_days", "is_reseller")


def now() -> str:
    """RFC 3339 UTC timestamp with milliseconds, as orgsettings writes them."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def key_hash(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def connect(path: str) -> sqlite3.Connection:
    """One autocommit connection with orgsettings' pragmas (WAL, FULL sync, foreign keys)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def seed(path: str, api_key: str) -> str:
    """Create the schema, one organization and one key for it; return the organization id."""
    org_id = str(uuid.uuid4())
    stamp = now()
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.execute(
            "INSERT INTO organizations"
            " (id, name, quiet_hours, auto_replies, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, "Bench", json.dumps(QUIET_HOURS), json.dumps(AUTO_REPLIES), stamp, stamp),
        )
        conn.execute(
            "INSERT INTO api_keys (key_hash, organization_id) VALUES (?, ?)",
            (key_hash(api_key), org_id),
        )
    finally:
        conn.close()
    return org_id


def organization(row: sqlite3.Row) -> dict[str, Any]:
    """The developer-API view of a row."""
    return {
        "id": row["id"],
        "name": row["name"],
        "billing_email": row["billing_email"],
        "plan": row["plan"],
        "throughput_tier": row["throughput_tier"],
        "tenant_type": row["tenant_type"],
        "message_retention_days": row["message_retention_days"],
        "mms_retention_days": row["mms_retention_days"],
        "is_reseller": bool(row["is_reseller"]),
        "quiet_hours": json.loads(row["quiet_hours"]),
        "auto_replies": json.loads(row["auto_replies"]),
        "registration_status": REGISTRATION,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class Store:
    """Thread-local connections to the peer database, and the three operations."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.environ[DB_ENV]
        self._local = threading.local()
        self._write_lock = threading.Lock()

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (the handlers run in thread pools)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    def org_for_key(self, api_key: str) -> str | None:
        """The organization id an unrevoked key belongs to, else None."""
        row = self.conn.execute(
            "SELECT organization_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
            (key_hash(api_key),),
        ).fetchone()
        return row[0] if row else None

    def get(self, org_id: str) -> dict[str, Any] | None:
        """Read one organization."""
        row = self.conn.execute("SELECT * FROM organizations WHERE id = ?", (org_id,)).fetchone()
        return organization(row) if row else None

    def patch(self, org_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the settable fields that differ, bumping version; return the organization."""
        conn = self.conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT * FROM organizations WHERE id = ?", (org_id,)).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return None
                diff = {k: v for k, v in changes.items() if k in SETTABLE and row[k] != v}
                if diff:
                    sets = ", ".join(f"{k} = ?" for k in diff)
                    conn.execute(
                        f"UPDATE organizations SET {sets}, updated_at = ?, version = version + 1"
                        " WHERE id = ?",
                        (*diff.values(), now(), org_id),
                    )
                    row = conn.execute(
                        "SELECT * FROM organizations WHERE id = ?", (org_id,)
                    ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return organization(row)

    def set_contact_protection(self, org_id: str, hours: int) -> bool:
        """Set contact_protection_period; False when the organization does not exist."""
        conn = self.conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT contact_protection_period FROM organizations WHERE id = ?", (org_id,)
                ).fetchone()
                if row is not None and row[0] != hours:
                    conn.execute(
                        "UPDATE organizations SET contact_protection_period = ?, updated_at = ?,"
                        " version = version + 1 WHERE id = ?",
                        (hours, now(), org_id),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return row is not None
