"""The SQLite backend of ``storage.interface.Store``: reads on a small thread pool, writes on
the group-commit writer thread. Nothing here runs a database call on the caller's event loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from storage.audit_chain import verdict
from storage.errors import StorageUnavailable
from storage.interface import Actor, Mutator, StorageObserver, VersionCheck
from storage.key_usage import KeyUsage
from storage.sqlite import audit, brands, keys, migrations, organizations
from storage.sqlite.connection import WriteLock, connect, file_identity
from storage.sqlite.writer import Writer, unavailable

T = TypeVar("T")

#: Default bound on every wait for the database: a write that cannot start within it, or a
#: statement kept waiting that long by another program's lock, fails with StorageUnavailable.
DEFAULT_WAIT_SECONDS = 5.0
#: Below this much free disk space a write may fail for want of room for its WAL frames, so
#: the store reports itself not ready before the first write fails.
MIN_FREE_BYTES = 256 * 1024
#: Reads run here; WAL readers never wait for the writer, so a few threads suffice.
READER_THREADS = 4


class SqliteStore:
    """One SQLite database file; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        key_usage: KeyUsage | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.wait_seconds = wait_seconds
        self._lock = WriteLock(self.path)
        self._key_usage = key_usage or KeyUsage()
        self._writer = Writer(
            self.path,
            lambda first: connect(self.path, wait_seconds, create=create and first),
            self._lock,
            wait_seconds,
            self._key_usage,
        )
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="reader")
        self._local = threading.local()
        self._opened: list[Database] = []
        self._opened_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> Database:
        return connect(self.path, self.wait_seconds)

    # -- how work reaches the database --------------------------------------------------------

    def _reader_db(self) -> Database:
        """This reader thread's connection, reopened when the file was removed or replaced."""
        db = getattr(self._local, "db", None)
        identity = file_identity(self.path)
        if db is not None and identity != self._local.identity:
            db.close()
            db = None
        if db is None:
            if identity is None:
                raise StorageUnavailable("the database file is missing", retry_after=5)
            db = self._local.db = self._connect()
            self._local.identity = file_identity(self.path)
            with self._opened_lock:
                self._opened.append(db)
        return db

    def _run_read(self, fn: Callable[[Database], T], deadline: float) -> T:
        try:
            if time.monotonic() > deadline:
                # Queued behind reads that each waited out a lock: past the bound already.
                raise StorageUnavailable("the database is busy")
            return fn(self._reader_db())
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            error = unavailable(exc)
        except StorageUnavailable as exc:
            error = exc
        for observer in self._writer.observers:
            observer.database_error(error.reason)
        raise error

    async def _read(self, fn: Callable[[Database], T]) -> T:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.wait_seconds
        return await loop.run_in_executor(self._readers, self._run_read, fn, deadline)

    async def _write(self, fn: Callable[[Database], T], *, transactional: bool = True) -> T:
        return await asyncio.wrap_future(self._writer.submit(fn, transactional=transactional))

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to do: SQLite's connections live on the store's own threads."""

    async def migrate(self) -> int:
        """Bring the schema up to date under the write lock; return the schema version.

        A database already at the latest version is left alone without taking the lock, so
        a server starts while another process is writing.
        """
        if self.path.exists():
            version = await self._read(migrations.schema_version)
            if version == migrations.latest_version():
                return version
        return await self._write(migrations.migrate, transactional=False)

    async def is_ready(self) -> bool:
        """True when the database answers within the bounded wait, fully migrated, and takes
        writes: the last write did not fail for a fault of its own, and its disk has room."""

        def check(db: Database) -> tuple[int, int]:
            disk = os.statvfs(self.path.parent)
            return migrations.schema_version(db), disk.f_bavail * disk.f_frsize

        try:
            version, free = await asyncio.wait_for(self._read(check), self.wait_seconds)
        except (StorageUnavailable, TimeoutError, OSError):
            return False
        return (
            version == migrations.latest_version()
            and self._writer.failing is None
            and free >= MIN_FREE_BYTES
        )

    async def close(self) -> None:
        """Write pending key uses, stop the writer, close every connection."""
        await asyncio.to_thread(self.close_now)

    def close_now(self) -> None:
        """``close`` for callers without an event loop; closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._readers.shutdown(wait=True)
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for db in opened:
            db.close()
        self._lock.close()

    def add_observer(self, observer: StorageObserver) -> None:
        """Tell ``observer`` about every committed batch and every database fault."""
        self._writer.observers.append(observer)

    # -- organizations ------------------------------------------------------------------------

    async def create_org(
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
        return await self._write(
            lambda db: organizations.create(
                db,
                name=name,
                actor=actor,
                surface=surface,
                tenant_type=tenant_type,
                plan=plan,
                throughput_tier=throughput_tier,
                request_id=request_id,
            )
        )

    async def get_org(self, org_id: str) -> dict[str, Any]:
        """The full organization record; raises NotFoundError."""
        return await self._read(lambda db: organizations.read(db, org_id))

    async def find_org_by_name(self, name: str) -> dict[str, Any] | None:
        """The oldest organization with exactly this name, if any."""
        return await self._read(lambda db: organizations.find_by_name(db, name))

    async def modify_org(
        self,
        org_id: str,
        mutate: Mutator,
        *,
        actor: Actor,
        surface: str,
        request_id: str | None,
        if_version: VersionCheck | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Apply ``mutate`` to the current record in one transaction (see the interface)."""
        return await self._write(
            lambda db: organizations.modify(
                db,
                org_id,
                mutate,
                actor=actor,
                surface=surface,
                request_id=request_id,
                if_version=if_version,
            )
        )

    async def set_operator_fields(
        self, org_id: str, fields: dict[str, Any], actor: Actor
    ) -> dict[str, Any]:
        """Change operator-only fields (plan, throughput tier, tenant type) with an event."""
        return await self._write(
            lambda db: organizations.set_operator_fields(db, org_id, fields, actor)
        )

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(
        self, *, org_id: str, key_hash: str, prefix: str, scopes: list[str], actor: Actor
    ) -> dict[str, Any]:
        """Store a new key's hash and record api_key.created."""
        return await self._write(
            lambda db: keys.create(
                db, org_id=org_id, key_hash=key_hash, prefix=prefix, scopes=scopes, actor=actor
            )
        )

    async def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key stored under this SHA-256 hash, revoked or not."""
        return await self._read(lambda db: keys.by_hash(db, key_hash))

    async def revoke_key(self, key_id: str, actor: Actor) -> dict[str, Any]:
        """Revoke a key (idempotent); records api_key.revoked the first time."""
        return await self._write(lambda db: keys.revoke(db, key_id, actor))

    def note_key_use(self, key_id: str) -> None:
        """Remember that a key was used now (written in batches; see storage.key_usage)."""
        self._writer.ensure_started()  # it writes the batches
        self._key_usage.note(key_id)

    # -- brands -------------------------------------------------------------------------------

    async def create_brand(
        self, *, org_id: str, status: str, campaigns: int, actor: Actor
    ) -> dict[str, Any]:
        """Register a brand for an organization and record brand.created."""
        return await self._write(
            lambda db: brands.create(
                db, org_id=org_id, status=status, campaigns=campaigns, actor=actor
            )
        )

    async def delete_brand(self, brand_id: str, actor: Actor) -> dict[str, Any]:
        """Delete a brand and record brand.deleted."""
        return await self._write(lambda db: brands.delete(db, brand_id, actor))

    # -- audit --------------------------------------------------------------------------------

    async def list_events(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events newest first; the page and the position to continue before, if any."""
        return await self._read(
            lambda db: audit.page(db, org_id, limit=limit, before_seq=before_seq)
        )

    async def verify_audit(self, org_id: str | None = None) -> dict[str, Any]:
        """Recompute the hash chains (see the interface); one consistent read."""

        def check(db: Database) -> dict[str, Any]:
            with db.atomic():  # one snapshot across every organization's chain
                chains = audit.chain(db, org_id)
            return verdict(chains)

        return await self._read(check)
