"""Numbered, forward-only schema steps for PostgreSQL; step N brings ``schema_migrations`` to N.

Every instance calls ``migrate`` at start (and ``orgsettings init`` does). The steps run in one
transaction under a transaction-scoped advisory lock, so ten instances starting at once migrate
once: the first takes the lock and applies the steps, the others wait for it, then find the
schema current and apply nothing. DDL is transactional in PostgreSQL, so a step that fails
leaves no half-made schema. Never edit or reorder a released step: add a new one.

Steps are additive (expand, then contract one release later), so the instances of the previous
release keep working on a schema one step ahead of them during a rolling deploy: an instance
finding a schema newer than it knows applies nothing and serves (``is_ready`` asks for at
least its own version).

The columns mirror the SQLite schema, so both backends show byte-identical records:
timestamps are RFC 3339 text exactly as the API shows them (and as the audit hash covers
them), and JSON-valued columns are JSON text (canonical, keys sorted) rather than ``jsonb``,
whose normalisation would change what the hash chain covers and which refuses ``\\u0000``.
"""

from __future__ import annotations

from psycopg import AsyncConnection

#: The advisory lock key every instance migrates under (the text "orgsett" as a number).
LOCK_KEY = 0x6F726773657474

_001_INITIAL = """
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
    is_reseller BOOLEAN NOT NULL DEFAULT false,
    quiet_hours TEXT NOT NULL,
    auto_replies TEXT NOT NULL,
    contact_protection_period INTEGER NOT NULL DEFAULT 0
        CHECK (contact_protection_period BETWEEN 0 AND 720),
    missed_call_message TEXT,
    missed_call_auto_message_enabled BOOLEAN NOT NULL DEFAULT false,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX organizations_by_name ON organizations (name, created_at);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used_at TEXT
);
CREATE INDEX api_keys_by_org ON api_keys (organization_id);

CREATE TABLE brands (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'PENDING', 'REJECTED')),
    campaign_count INTEGER NOT NULL DEFAULT 0 CHECK (campaign_count >= 0),
    created_at TEXT NOT NULL
);
CREATE INDEX brands_by_org ON brands (organization_id);

CREATE TABLE audit_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    actor TEXT NOT NULL,
    surface TEXT NOT NULL CHECK (surface IN ('v1', 'dashboard', 'cli')),
    request_id TEXT,
    changes TEXT NOT NULL,
    attestation TEXT,
    created_at TEXT NOT NULL,
    prev_hash TEXT,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_org ON audit_events (organization_id, seq);

-- Append-only, whoever connects: triggers fire for every role, table owner and superuser
-- included (only session_replication_role = replica, a superuser's setting, skips them).
-- INSERT ... ON CONFLICT DO UPDATE reaches the update trigger; an id or seq cannot be reused
-- (unique, and seq is GENERATED ALWAYS).
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
"""

# The opt-out ledger (``seq`` orders the newest-first page: a page at any depth is one index
# range) and the requests remembered for idempotency, each with the answer it got.
_002_OPT_OUT_LEDGER = """
CREATE TABLE opt_outs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    phone_number TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('keyword', 'api')),
    keyword TEXT,
    inbound_message_id TEXT,
    reason TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (organization_id, phone_number)
);
CREATE INDEX opt_outs_newest ON opt_outs (organization_id, seq);

CREATE TABLE remembered_requests (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    kind TEXT NOT NULL CHECK (kind IN ('inbound', 'missed_call')),
    id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, kind, id)
);
"""

# The last missed-call auto-message per organization and number, for contact protection: the
# ``at`` of the latest call answered send or hold (UTC text, fixed width, so text order is
# time order) and that call's id.
_003_MISSED_CALL_CONTACTS = """
CREATE TABLE missed_call_contacts (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    phone_number TEXT NOT NULL,
    last_sent_at TEXT NOT NULL,
    call_id TEXT NOT NULL,
    PRIMARY KEY (organization_id, phone_number)
);
"""

# The ledger's newest-first page by its own index, whatever the statistics say. With the primary
# key on ``seq`` alone, an organization holding most of the ledger had its page planned as a
# backward scan of that key filtered by organization: one range while its rows are the newest,
# but every newer row of the other organizations is read and dropped first (300,000 of them
# made a first page of 20 take 62 ms instead of 0.03 ms). The primary key becomes
# (organization_id, seq), which is the page's range; ``opt_outs_newest`` (the same columns) goes.
# No index leads with ``seq`` any more, so no plan can walk the whole ledger for one
# organization's page. (``seq`` stays an identity column: still unique, still increasing.) The
# previous release's statements are unchanged and run on the new key. The step rebuilds one
# index under the table's lock: about 6 s for 1,000,000 entries on the bench VM.
_004_LEDGER_PAGE_BY_ORGANIZATION = """
ALTER TABLE opt_outs DROP CONSTRAINT opt_outs_pkey;
ALTER TABLE opt_outs ADD CONSTRAINT opt_outs_pkey PRIMARY KEY (organization_id, seq);
DROP INDEX opt_outs_newest;
"""

MIGRATIONS: list[str] = [
    _001_INITIAL,
    _002_OPT_OUT_LEDGER,
    _003_MISSED_CALL_CONTACTS,
    _004_LEDGER_PAGE_BY_ORGANIZATION,
]

_TRACKING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def latest_version() -> int:
    """The migration number this code expects."""
    return len(MIGRATIONS)


async def schema_version(conn: AsyncConnection) -> int:
    """The migration number the database is at (0 before the first ``migrate``)."""
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
    row = await cursor.fetchone()
    if not row or not row["present"]:
        return 0
    cursor = await conn.execute(
        "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations"
    )
    row = await cursor.fetchone()
    return int(row["version"]) if row else 0


async def usable_version(conn: AsyncConnection) -> int:
    """The schema version, after checking the database can hold every text the API takes.

    A database in another encoding (SQL_ASCII or LATIN1, which ``createdb`` gives on a cluster
    made under a C or Latin-1 locale) would fail or mangle valid requests later: it is refused
    at start with a clear reason instead.
    """
    cursor = await conn.execute("SHOW server_encoding")
    row = await cursor.fetchone()
    encoding = row["server_encoding"] if row else "unknown"
    if encoding != "UTF8":
        raise ValueError(
            f"the database's encoding is {encoding}; orgsettings needs UTF8"
            " (createdb --encoding=UTF8 --template=template0 NAME)"
        )
    return await schema_version(conn)


async def migrate(conn: AsyncConnection) -> int:
    """Apply every pending step in one transaction under the advisory lock; return the version.

    ``conn`` is in autocommit mode; the transaction is this function's own.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        await conn.execute(_TRACKING)
        current = await schema_version(conn)
        for number, step in enumerate(MIGRATIONS, start=1):
            if number > current:
                await conn.execute(step)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [number])
    return await schema_version(conn)
