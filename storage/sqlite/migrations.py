"""Numbered, append-only schema steps; step N brings the database to PRAGMA user_version N.

Never edit or reorder a released step: add a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from storage.audit_chain import event_hash
from storage.records import event_from_row


def _001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE organizations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            billing_email TEXT,
            plan TEXT NOT NULL DEFAULT 'payg',
            throughput_tier INTEGER NOT NULL DEFAULT 1 CHECK (throughput_tier >= 1),
            tenant_type TEXT NOT NULL DEFAULT 'commercial'
                CHECK (tenant_type IN ('commercial', 'personal')),
            message_retention_days INTEGER NOT NULL DEFAULT 90
                CHECK (message_retention_days BETWEEN 30 AND 365),
            mms_retention_days INTEGER NOT NULL DEFAULT 30
                CHECK (mms_retention_days BETWEEN 1 AND 365
                       AND mms_retention_days <= message_retention_days),
            is_reseller INTEGER NOT NULL DEFAULT 0 CHECK (is_reseller IN (0, 1)),
            quiet_hours TEXT NOT NULL,
            auto_replies TEXT NOT NULL,
            contact_protection_period INTEGER NOT NULL DEFAULT 0
                CHECK (contact_protection_period BETWEEN 0 AND 720),
            missed_call_message TEXT,
            missed_call_auto_message_enabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        )
        """
    )
    db.execute(
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            last_used_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE brands (
            id TEXT PRIMARY KEY,
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'PENDING', 'REJECTED')),
            campaign_count INTEGER NOT NULL DEFAULT 0 CHECK (campaign_count >= 0),
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX brands_by_org ON brands (organization_id)")
    db.execute(
        """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            actor TEXT NOT NULL,
            surface TEXT NOT NULL CHECK (surface IN ('v1', 'dashboard', 'cli')),
            request_id TEXT,
            changes TEXT NOT NULL,
            attestation TEXT,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audit_by_org ON audit_events (organization_id, seq)")
    # Append-only: the database itself refuses to change or drop an event.
    db.execute(
        """
        CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
        """
    )


def _002_audit_hash_chain(db: Database) -> None:
    """Chain every event (see storage.audit_chain), and refuse what the triggers of 001 missed:
    ``INSERT OR REPLACE`` deletes the row it replaces without firing a delete trigger, so any
    insert reusing an event's id or seq is refused before its conflict resolution runs."""
    db.execute("ALTER TABLE audit_events ADD COLUMN prev_hash TEXT")
    db.execute("ALTER TABLE audit_events ADD COLUMN hash TEXT")
    last: dict[str, str] = {}
    rows = db.conn.execute("SELECT * FROM audit_events ORDER BY seq").fetchall()
    names = [c[0] for c in db.conn.execute("SELECT * FROM audit_events LIMIT 0").description]
    chained = []
    for values in rows:
        event = event_from_row({**dict(zip(names, values, strict=True)), "hash": None})
        event["prev_hash"] = last.get(event["organization_id"])
        event["hash"] = event_hash(event)
        last[event["organization_id"]] = event["hash"]
        chained.append((event["prev_hash"], event["hash"], event["id"]))
    # Chaining the existing events is the one update the table ever gets: the update trigger
    # steps aside for this migration only.
    db.execute("DROP TRIGGER audit_events_no_update")
    db.conn.executemany("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?", chained)
    db.execute(
        """
        CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER audit_events_no_reuse BEFORE INSERT ON audit_events
        WHEN EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id OR seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
        """
    )


def _003_write_probe(db: Database) -> None:
    """One row the writer rewrites to learn whether the database takes writes again after a
    fault (disk full, say), while no request is writing."""
    db.execute("CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at TEXT)")
    db.execute("INSERT INTO write_probe (id, probed_at) VALUES (1, NULL)")


def _004_opt_out_ledger(db: Database) -> None:
    """The opt-out ledger (one entry per organization and number; ``seq`` orders the newest
    first page, so a page at any depth is one index range) and the requests remembered for
    idempotency (inbound messages, missed calls), each with the answer it got."""
    db.execute(
        """
        CREATE TABLE opt_outs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            phone_number TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('keyword', 'api')),
            keyword TEXT,
            inbound_message_id TEXT,
            reason TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (organization_id, phone_number)
        )
        """
    )
    db.execute("CREATE INDEX opt_outs_newest ON opt_outs (organization_id, seq)")
    db.execute(
        """
        CREATE TABLE remembered_requests (
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            kind TEXT NOT NULL CHECK (kind IN ('inbound', 'missed_call')),
            id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            answer TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (organization_id, kind, id)
        ) WITHOUT ROWID
        """
    )


def _005_missed_call_contacts(db: Database) -> None:
    """The last missed-call auto-message per organization and number, for contact protection:
    the ``at`` of the latest call answered send or hold (UTC text, fixed width, so text order
    is time order) and that call's id."""
    db.execute(
        """
        CREATE TABLE missed_call_contacts (
            organization_id TEXT NOT NULL REFERENCES organizations(id),
            phone_number TEXT NOT NULL,
            last_sent_at TEXT NOT NULL,
            call_id TEXT NOT NULL,
            PRIMARY KEY (organization_id, phone_number)
        ) WITHOUT ROWID
        """
    )


MIGRATIONS: list[Callable[[Database], None]] = [
    _001_initial,
    _002_audit_hash_chain,
    _003_write_probe,
    _004_opt_out_ledger,
    _005_missed_call_contacts,
]


def schema_version(db: Database) -> int:
    """The migration number the database is at (PRAGMA user_version)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def latest_version() -> int:
    """The migration number this code expects."""
    return len(MIGRATIONS)


def migrate(db: Database) -> int:
    """Apply every pending step, each in its own transaction; return the version.

    The caller holds the write lock. sqlite-utils' ``Migrations`` records steps in a table of
    its own; PRODUCT.md tracks them in ``PRAGMA user_version``, which SQLite commits with the
    step itself, so the steps run here under ``db.atomic()``.
    """
    current = schema_version(db)
    for number, step in enumerate(MIGRATIONS, start=1):
        if number > current:
            with db.atomic():
                step(db)
                db.execute(f"PRAGMA user_version = {number}")
    return schema_version(db)
