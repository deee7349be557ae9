"""The one place that reads and writes the database: organizations, keys, brands, audit."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from ulid import ULID
from uuid6 import uuid7

from storage import db as dbmod
from storage.records import (
    AUTO_REPLIES_DEFAULT,
    MUTABLE_FIELDS,
    QUIET_HOURS_DEFAULT,
    copy_org,
    diff,
    event_from_row,
    from_json,
    org_from_row,
    org_to_row,
    to_json,
    utcnow,
)
from storage.writer import GroupCommit

T = TypeVar("T")
Actor = dict[str, Any]
#: Gets a copy of the current record; returns the wanted record and the attestation statement
#: to store on the audit event (or None). Raising rejects the change.
Mutator = Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]


_EVENT_COLUMNS = (
    "id",
    "type",
    "organization_id",
    "actor",
    "surface",
    "request_id",
    "changes",
    "attestation",
    "created_at",
)
_INSERT_EVENT = (
    f"INSERT INTO audit_events ({', '.join(_EVENT_COLUMNS)})"
    f" VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)
_ORG_UPDATE_COLUMNS = (*MUTABLE_FIELDS, "updated_at", "version")
_UPDATE_ORG = (
    f"UPDATE organizations SET {', '.join(f'{c} = ?' for c in _ORG_UPDATE_COLUMNS)} WHERE id = ?"
)


class NotFoundError(LookupError):
    """The record asked for does not exist."""


class VersionMismatchError(Exception):
    """The record's version is not the one the caller expected (stale If-Match)."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("version mismatch")
        self.current = current


class Store:
    """SQLite-backed store; one connection per thread, one write transaction at a time."""

    def __init__(self, path: str | Path, group_commit: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[Database] = []
        self._connections_lock = threading.Lock()
        self.lock = dbmod.WriteLock(self.path)
        #: The server batches concurrent writes into shared commits; the CLI writes directly.
        self.group = (
            GroupCommit(lambda: dbmod.connect(self.path), self.lock) if group_commit else None
        )

    # -- connections and transactions -------------------------------------------------------

    @property
    def db(self) -> Database:
        """This thread's connection, opened once and reused for the thread's life."""
        conn = getattr(self._local, "db", None)
        if conn is None:
            conn = dbmod.connect(self.path)
            self._local.db = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def transact(self, fn: Callable[[Database], T], wait: bool = True) -> T | None:
        """Run ``fn(db)`` as one write transaction: read, check, write, commit, all or nothing.

        Returns after the commit with fn's result; an exception from fn rolls back its writes.
        On the server's event loop the write joins the open group-commit transaction (the HTTP
        layer awaits its COMMIT before answering); ``wait=False`` there queues it for a coming
        transaction instead. Anywhere else it is a transaction of its own under the write lock.
        """
        group = self.group
        if group is not None and group.on_loop_thread():
            # On the server's event loop: inline in the shared transaction (storage.writer).
            if wait:
                return group.run_job(fn)
            group.defer(fn)
            return None
        db = self.db
        with self.lock.held(), db.atomic():
            return fn(db)

    def migrate(self) -> int:
        """Bring the schema up to date; return the schema version."""
        return dbmod.migrate(self.db, self.lock)

    def is_ready(self) -> bool:
        """True when the database answers and is fully migrated."""
        try:
            return dbmod.schema_version(self.db) == dbmod.latest_version()
        except Exception:
            return False

    def close(self) -> None:
        """Finish queued writes, checkpoint the WAL and close every connection."""
        if self.group is not None:
            self.group.close()
        with self._connections_lock:
            conns, self._connections = self._connections, []
        for index, conn in enumerate(conns):
            with contextlib.suppress(Exception):
                if index == 0:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                conn.close()
        self._local = threading.local()
        self.lock.close()

    # -- audit ------------------------------------------------------------------------------

    @staticmethod
    def _record(
        db: Database,
        *,
        type_: str,
        org_id: str,
        actor: Actor,
        surface: str,
        request_id: str | None,
        changes: dict[str, Any],
        attestation: str | None = None,
        at: str | None = None,
    ) -> dict[str, Any]:
        row = {
            "id": str(ULID()),
            "type": type_,
            "organization_id": org_id,
            "actor": to_json(actor),
            "surface": surface,
            "request_id": request_id,
            "changes": to_json(changes),
            "attestation": attestation,
            "created_at": at or utcnow(),
        }
        # A prepared statement, not table.insert(): this runs in every write transaction and
        # sqlite-utils' insert introspects the table (PRAGMA table_info) on each call.
        db.execute(_INSERT_EVENT, [row[c] for c in _EVENT_COLUMNS])
        return event_from_row(row)

    def list_events(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events newest first; returns the page and the seq to continue before, if any."""
        sql = "SELECT * FROM audit_events WHERE organization_id = ?"
        params: list[Any] = [org_id]
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(before_seq)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit + 1)
        rows = list(self.db.query(sql, params))
        next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
        return [event_from_row(r) for r in rows[:limit]], next_seq

    # -- organizations ----------------------------------------------------------------------

    def create_org(
        self,
        *,
        name: str,
        actor: Actor,
        surface: str = "cli",
        tenant_type: str = "commercial",
        plan: str = "payg",
        throughput_tier: int = 1,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an organization with every default, and its organization.created event."""
        now = utcnow()
        row = {
            "id": str(uuid7()),
            "name": name,
            "billing_email": None,
            "plan": plan,
            "throughput_tier": throughput_tier,
            "tenant_type": tenant_type,
            "message_retention_days": 90,
            "mms_retention_days": 30,
            "is_reseller": 0,
            "quiet_hours": to_json(QUIET_HOURS_DEFAULT),
            "auto_replies": to_json(AUTO_REPLIES_DEFAULT),
            "contact_protection_period": 0,
            "missed_call_message": None,
            "missed_call_auto_message_enabled": 0,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }

        def txn(db: Database) -> Any:
            db["organizations"].insert(row)
            org = self._org(db, row["id"])
            created = {
                k: {"from": None, "to": org[k]}
                for k in ("name", "plan", "throughput_tier", "tenant_type")
            }
            self._record(
                db,
                type_="organization.created",
                org_id=row["id"],
                actor=actor,
                surface=surface,
                request_id=request_id,
                changes=created,
            )
            return org

        return self.transact(txn)

    # The organization and its brand summary in one statement: this runs on every GET and
    # inside every write, so it skips sqlite-utils' query wrapper for a plain cursor.
    _ORG_SQL = """
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

    def _org(self, db: Database, org_id: str) -> dict[str, Any]:
        cursor = db.conn.execute(self._ORG_SQL, [org_id])
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

    def find_org_by_name(self, name: str) -> dict[str, Any] | None:
        """The oldest organization with this exact name, if any."""
        rows = list(
            self.db.query(
                "SELECT id FROM organizations WHERE name = ? ORDER BY created_at LIMIT 1", [name]
            )
        )
        return self.get_org(rows[0]["id"]) if rows else None

    def get_org(self, org_id: str) -> dict[str, Any]:
        """The full organization record; raises NotFoundError."""
        return self._org(self.db, org_id)

    def modify_org(
        self,
        org_id: str,
        mutate: Mutator,
        *,
        actor: Actor,
        surface: str,
        request_id: str | None,
        if_version: Callable[[int], bool] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Apply ``mutate`` to the current record inside one write transaction.

        ``mutate`` gets a copy of the current record and returns the wanted record with the
        attestation to store; it may raise to reject the change, and then nothing is written.
        ``if_version`` (the If-Match check) sees the current version first. An effective change
        bumps the version, sets updated_at and writes one organization.updated event in the
        same transaction; a change that changes nothing writes nothing. Returns the record as
        committed and the event (or None).
        """

        def txn(db: Database) -> Any:
            current = self._org(db, org_id)
            if if_version is not None and not if_version(current["version"]):
                raise VersionMismatchError(current)
            wanted, attestation = mutate(copy_org(current))
            changes = diff(current, wanted)
            if not changes:
                return current, None
            row = org_to_row(wanted)
            row["updated_at"] = utcnow()
            row["version"] = current["version"] + 1
            db.execute(_UPDATE_ORG, [*(row[c] for c in _ORG_UPDATE_COLUMNS), org_id])
            event = self._record(
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
            committed = {**wanted, "updated_at": row["updated_at"], "version": row["version"]}
            return committed, event

        return self.transact(txn)

    def set_operator_fields(self, org_id: str, fields: dict[str, Any], actor: Actor) -> dict:
        """Change operator-only fields (plan, throughput tier, tenant type) with an event."""

        def txn(db: Database) -> Any:
            current = self._org(db, org_id)
            changes = {
                k: {"from": current[k], "to": v} for k, v in fields.items() if current[k] != v
            }
            if not changes:
                return current
            db["organizations"].update(
                org_id,
                {**fields, "updated_at": utcnow(), "version": current["version"] + 1},
            )
            self._record(
                db,
                type_="organization.updated",
                org_id=org_id,
                actor=actor,
                surface="cli",
                request_id=None,
                changes=changes,
            )
            return self._org(db, org_id)

        return self.transact(txn)

    # -- API keys ---------------------------------------------------------------------------

    def create_key(
        self, *, org_id: str, key_hash: str, prefix: str, scopes: list[str], actor: Actor
    ) -> dict[str, Any]:
        """Store a new key's hash and record api_key.created; the secret is never stored."""
        row = {
            "id": f"key_{ULID()}",
            "organization_id": org_id,
            "key_hash": key_hash,
            "prefix": prefix,
            "scopes": to_json(sorted(set(scopes))),
            "created_at": utcnow(),
            "revoked_at": None,
            "last_used_at": None,
        }

        def txn(db: Database) -> Any:
            self._org(db, org_id)
            db["api_keys"].insert(row)
            self._record(
                db,
                type_="api_key.created",
                org_id=org_id,
                actor=actor,
                surface="cli",
                request_id=None,
                changes={
                    "api_key": {
                        "from": None,
                        "to": {
                            "id": row["id"],
                            "prefix": prefix,
                            "scopes": from_json(row["scopes"]),
                        },
                    }
                },
            )
            return None

        self.transact(txn)
        return self._key_from_row(row)

    @staticmethod
    def _key_from_row(row: dict[str, Any]) -> dict[str, Any]:
        key = {k: v for k, v in row.items() if k != "key_hash"}
        key["scopes"] = from_json(row["scopes"])
        return key

    def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key whose SHA-256 hash this is (an indexed lookup, no secret comparison)."""
        cursor = self.db.conn.execute("SELECT * FROM api_keys WHERE key_hash = ?", [key_hash])
        row = cursor.fetchone()
        if row is None:
            return None
        return self._key_from_row(dict(zip((c[0] for c in cursor.description), row, strict=True)))

    def touch_key(self, key_id: str, when: str) -> None:
        """Record that a key was used; with group commit, queued without waiting for it."""

        def txn(db: Database) -> Any:
            db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [when, key_id])
            return None

        self.transact(txn, wait=False)

    def revoke_key(self, key_id: str, actor: Actor) -> dict[str, Any]:
        """Revoke a key (idempotent); records api_key.revoked the first time."""

        def txn(db: Database) -> Any:
            rows = list(db.query("SELECT * FROM api_keys WHERE id = ?", [key_id]))
            if not rows:
                raise NotFoundError(key_id)
            row = rows[0]
            if row["revoked_at"] is None:
                row["revoked_at"] = utcnow()
                db["api_keys"].update(key_id, {"revoked_at": row["revoked_at"]})
                self._record(
                    db,
                    type_="api_key.revoked",
                    org_id=row["organization_id"],
                    actor=actor,
                    surface="cli",
                    request_id=None,
                    changes={"api_key.revoked_at": {"from": None, "to": row["revoked_at"]}},
                )
            return self._key_from_row(row)

        return self.transact(txn)

    # -- brands -----------------------------------------------------------------------------

    def create_brand(
        self, *, org_id: str, status: str, campaigns: int, actor: Actor
    ) -> dict[str, Any]:
        """Register a brand for an organization and record brand.created."""
        row = {
            "id": f"brand_{ULID()}",
            "organization_id": org_id,
            "status": status,
            "campaign_count": campaigns,
            "created_at": utcnow(),
        }

        def txn(db: Database) -> Any:
            self._org(db, org_id)
            db["brands"].insert(row)
            self._record(
                db,
                type_="brand.created",
                org_id=org_id,
                actor=actor,
                surface="cli",
                request_id=None,
                changes={"brand": {"from": None, "to": row}},
            )
            return None

        self.transact(txn)
        return row

    def delete_brand(self, brand_id: str, actor: Actor) -> dict[str, Any]:
        """Delete a brand and record brand.deleted."""

        def txn(db: Database) -> Any:
            rows = list(db.query("SELECT * FROM brands WHERE id = ?", [brand_id]))
            if not rows:
                raise NotFoundError(brand_id)
            row = rows[0]
            db.execute("DELETE FROM brands WHERE id = ?", [brand_id])
            self._record(
                db,
                type_="brand.deleted",
                org_id=row["organization_id"],
                actor=actor,
                surface="cli",
                request_id=None,
                changes={"brand": {"from": row, "to": None}},
            )
            return row

        return self.transact(txn)
