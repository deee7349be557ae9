"""The PostgreSQL backend of ``storage.interface.Store``, for many instances over one database.

Connections come from a psycopg_pool ``AsyncConnectionPool``. A server calls ``start`` from its
event loop, and the pool lives there: psycopg's waits are awaits that never block the loop, and
a request costs no hop between threads. Anyone else (the CLI, scripts, tests calling from loops
that come and go) gets the pool on the store's own loop thread (``LoopThread``), and every call
hops there. Every write is one transaction on one connection: it locks the organization's row
(``SELECT ... FOR UPDATE``) before it reads, checks and writes the record and its audit event,
so concurrent writers in any number of instances never overwrite each other's fields and an
``If-Match`` race has exactly one winner.

Every wait is bounded: a connection from the pool within ``wait_seconds`` (``PoolTimeout``), a
row lock within ``wait_seconds`` (``lock_timeout``), a statement within ``statement_timeout``,
a new connection within ``connect_timeout``, and the whole call within their sum (a server
that stops answering). A database fault arrives as ``StorageUnavailable`` (503); the pool
replaces broken connections by itself, so the store recovers when the database returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from storage.audit_chain import verdict
from storage.errors import NotFoundError, StorageUnavailable
from storage.interface import Actor, Mutator, StorageObserver, VersionCheck
from storage.key_usage import KeyUsage
from storage.postgresql import audit, brands, keys, migrations, organizations
from storage.postgresql.loop import LoopThread

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]

DEFAULT_WAIT_SECONDS = 5.0
DEFAULT_POOL_SIZE = 10
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 5.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
#: Migrations may wait this long for another instance's migration (the advisory lock).
MIGRATE_SECONDS = 60.0
#: A transaction that fails for a concurrency reason PostgreSQL asks to retry
#: (serialization failure, deadlock) is run again up to this many times in all.
ATTEMPTS = 3


def is_postgresql_url(location: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs and output."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an unparsable URL)"
    host = params.get("host", "")
    port = f":{params['port']}" if params.get("port") else ""
    user = f"{params['user']}@" if params.get("user") else ""
    return f"postgresql://{user}{host}{port}/{params.get('dbname', '')}"


def unavailable(exc: BaseException) -> StorageUnavailable | None:
    """The client-facing fault for a driver or pool error (never the driver's own text), or
    None when the error is not the database's fault (a bug, left to propagate)."""
    if isinstance(exc, PoolTimeout):
        return StorageUnavailable("no database connection within the bound", retry_after=2)
    if isinstance(exc, errors.LockNotAvailable | errors.QueryCanceled | TimeoutError):
        return StorageUnavailable("the database is busy")
    if _retryable(exc):  # still conflicting after every attempt
        return StorageUnavailable("the database is busy")
    if isinstance(exc, errors.DiskFull):
        return StorageUnavailable("the database disk is full", retry_after=5)
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return StorageUnavailable("the database does not take writes", retry_after=5)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StorageUnavailable("the database is unreachable", retry_after=5)
    return None


async def _within(work: Awaitable[T], seconds: float) -> T:
    """``work``'s result, or TimeoutError after ``seconds`` without waiting for its cleanup.

    A query cut short is cancelled in the server by psycopg, which may itself wait for a
    server that stopped answering (up to 10 s): that clean-up goes on in the background, and
    the caller gets its answer at the bound.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
    raise TimeoutError


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected)


def _has_nul(*values: str | None) -> bool:
    """PostgreSQL text cannot hold NUL: such an id names no record."""
    return any(value is not None and "\x00" in value for value in values)


class PostgresStore:
    """One PostgreSQL database; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        key_usage: KeyUsage | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        try:
            self._given_options = conninfo_to_dict(url).get("options")
        except psycopg.Error:
            # The driver's message quotes the URL, password included: never shown.
            raise ValueError(
                "the database URL is not a valid PostgreSQL URL (a '%', '@', '/' or ':' in the"
                " password must be percent-encoded)"
            ) from None
        self.url = url
        self.wait_seconds = wait_seconds
        self.pool_size = pool_size
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        #: The bound on one call: a connection, a lock, a statement or two, and a reconnect.
        self.bound = wait_seconds + statement_timeout + connect_timeout
        self._key_usage = key_usage or KeyUsage()
        self._observers: list[StorageObserver] = []
        self._loop: LoopThread | None = None
        self._pool: AsyncConnectionPool | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_now: asyncio.Event | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        #: The server's event loop, when ``start`` put the pool there.
        self._home: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        #: Calls running on the store's loop, which ``close`` lets finish (within the bound).
        self._in_flight: set[asyncio.Task[Any]] = set()

    # -- how work reaches the database --------------------------------------------------------

    def _connection_kwargs(self) -> dict[str, Any]:
        ms = lambda seconds: str(max(1, round(seconds * 1000)))  # noqa: E731
        ours = (
            f"-c statement_timeout={ms(self.statement_timeout)}"
            f" -c lock_timeout={ms(self.wait_seconds)}"
            f" -c idle_in_transaction_session_timeout={ms(self.bound * 2)}"
        )
        given = self._given_options
        return {
            "autocommit": True,
            "row_factory": dict_row,
            # libpq counts whole seconds and takes at least 2.
            "connect_timeout": max(2, math.ceil(self.connect_timeout)),
            "options": f"{given} {ours}" if given else ours,
            "application_name": "orgsettings",
            "client_encoding": "UTF8",
            # A peer that vanishes without a word (a host down) is noticed within ~25 s.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }

    async def start(self) -> None:
        """Keep the pool on the running event loop, which makes every later call (a server's
        worker). Without it the pool lives on the store's own loop thread."""
        with self._start_lock:
            if self._closed:
                raise StorageUnavailable("the store is closed", retry_after=5)
            if self._loop is not None or self._home is not None:
                return
            self._home = asyncio.get_running_loop()
        await self._open()

    def _started(self) -> LoopThread:
        with self._start_lock:
            if self._closed:
                raise StorageUnavailable("the store is closed", retry_after=5)
            if self._loop is None:
                loop = LoopThread("postgresql")
                try:
                    loop.submit(self._open()).result()
                except BaseException:
                    loop.stop()
                    raise
                self._loop = loop
            return self._loop

    async def _open(self) -> None:
        self._pool = AsyncConnectionPool(
            self.url,
            kwargs=self._connection_kwargs(),
            min_size=1,
            max_size=self.pool_size,
            timeout=self.wait_seconds,
            max_idle=300,
            name="orgsettings",
            open=False,
        )
        await self._pool.open(wait=False)
        self._flush_now = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._key_usage.on_full = lambda: loop.call_soon_threadsafe(self._flush_now.set)
        self._flusher = asyncio.create_task(self._flush_key_usage())

    async def _call(self, work: Callable[[], Awaitable[T]], bound: float | None = None) -> T:
        """Run ``work`` on the store's loop within the bound; faults become StorageUnavailable."""

        async def bounded() -> T:
            task = asyncio.current_task()
            assert task is not None
            self._in_flight.add(task)
            try:
                return await _within(work(), bound or self.bound)
            except (NotFoundError, StorageUnavailable):
                raise
            except Exception as exc:
                error = unavailable(exc)
                if error is None:
                    raise
            finally:
                self._in_flight.discard(task)
            for observer in self._observers:
                observer.database_error(error.reason)
            raise error

        home = self._home
        if home is not None:
            if self._closed:
                raise StorageUnavailable("the store is closed", retry_after=5)
            if asyncio.get_running_loop() is home:
                return await bounded()
            # Another loop calling a server's store (a test's): run it on the server's loop.
            future = asyncio.run_coroutine_threadsafe(bounded(), home)
            return await asyncio.wait_for(asyncio.wrap_future(future), (bound or self.bound) + 1)
        try:
            return await self._started().run(bounded())
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise  # the caller itself was cancelled (a client gone): let it end
            # Cancelled on the store's side: it was closed while this call ran.
            raise StorageUnavailable("the store is closed", retry_after=5) from None

    async def _read(self, fn: Work[T]) -> T:
        async def work() -> T:
            assert self._pool is not None
            for attempt in range(1, ATTEMPTS + 1):
                conn: AsyncConnection | None = None
                try:
                    async with self._pool.connection() as conn:
                        return await fn(conn)
                except psycopg.OperationalError:
                    # A connection that died while idle in the pool (the server restarted):
                    # a read is safe to run again on a fresh one.
                    if conn is None or not conn.broken or attempt == ATTEMPTS:
                        raise
            raise AssertionError("unreachable")

        return await self._call(work)

    async def _write(self, fn: Work[T]) -> T:
        async def work() -> T:
            assert self._pool is not None
            for attempt in range(1, ATTEMPTS + 1):
                conn: AsyncConnection | None = None
                committing = False
                asked = time.monotonic()
                try:
                    async with self._pool.connection() as conn:
                        waited = time.monotonic() - asked
                        # Pipeline mode: statements whose results are not read (BEGIN, the
                        # UPDATE, the audit INSERT, COMMIT) go out with the next one, so the
                        # row lock is held for two round trips after it is granted, not five.
                        async with conn.pipeline(), conn.transaction():
                            result = await fn(conn)
                            committing = True
                        for observer in self._observers:
                            observer.batch(1, [waited])
                        return result
                except psycopg.Error as exc:
                    # Run again only what surely did not commit: a conflict PostgreSQL asks to
                    # retry, or a connection found dead before the COMMIT was sent.
                    lost = conn is not None and conn.broken and not committing
                    if attempt == ATTEMPTS or not (_retryable(exc) or lost):
                        raise
            raise AssertionError("unreachable")

        return await self._call(work)

    # -- lifecycle ----------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Bring the schema up to date under the advisory lock; return the schema version.

        A database not in UTF8 is refused (ValueError) before anything is written."""
        version = await self._read(migrations.usable_version)
        if version >= migrations.latest_version():
            return version  # current, or a newer release's (see storage.postgresql.migrations)

        async def work() -> int:
            assert self._pool is not None
            async with self._pool.connection(timeout=MIGRATE_SECONDS) as conn:
                await conn.execute(f"SET statement_timeout = {int(MIGRATE_SECONDS * 1000)}")
                await conn.execute(f"SET lock_timeout = {int(MIGRATE_SECONDS * 1000)}")
                try:
                    return await migrations.migrate(conn)
                finally:
                    await conn.execute("RESET statement_timeout; RESET lock_timeout")

        return await self._call(work, bound=MIGRATE_SECONDS + self.bound)

    async def is_ready(self) -> bool:
        """True when the database answers within the bounded wait, migrated at least as far
        as this code knows."""
        try:
            version = await asyncio.wait_for(
                self._read(migrations.schema_version), self.wait_seconds
            )
        except (StorageUnavailable, TimeoutError):
            return False
        return version >= migrations.latest_version()

    async def close(self) -> None:
        """Let calls in flight finish, write pending key uses, close the pool, stop the loop
        thread (if any)."""
        home = self._home
        if home is None:
            await asyncio.to_thread(self.close_now)
            return
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        if asyncio.get_running_loop() is home:
            await self._shut()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shut(), home))

    def close_now(self) -> None:
        """``close`` for callers without an event loop; closing twice does nothing."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            loop, home = self._loop, self._home
        if home is not None:
            asyncio.run_coroutine_threadsafe(self._shut(), home).result(timeout=self.bound + 5)
            return
        if loop is None:
            return
        try:
            loop.submit(self._shut()).result(timeout=self.bound + 5)
        finally:
            loop.stop()

    async def _shut(self) -> None:
        self._stopping = True
        if self._flush_now is not None:
            self._flush_now.set()
        running = set(self._in_flight)
        if self._flusher is not None:
            running.add(self._flusher)
        if running:
            await asyncio.wait(running, timeout=self.bound)
        try:
            await self._flush(force=True)
        finally:
            if self._pool is not None:
                await self._pool.close(timeout=self.bound)

    def add_observer(self, observer: StorageObserver) -> None:
        """Tell ``observer`` about every committed write and every database fault."""
        self._observers.append(observer)

    # -- key usage ----------------------------------------------------------------------------

    async def _flush_key_usage(self) -> None:
        assert self._flush_now is not None
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._flush_now.wait(), max(0.01, self._key_usage.seconds_until_due())
                )
            self._flush_now.clear()
            if not self._stopping:  # close() writes what is pending itself
                await self._flush(force=False)

    async def _flush(self, force: bool) -> None:
        used = self._key_usage.take(force=force)
        if not used or self._pool is None:
            return
        try:
            await _within(self._touch(used), self.bound)
        except (psycopg.Error, PoolTimeout, TimeoutError):
            self._key_usage.put_back(used)  # the next flush tries again
        except BaseException:
            self._key_usage.put_back(used)
            raise

    async def _touch(self, used: dict[str, str]) -> None:
        assert self._pool is not None
        async with self._pool.connection() as conn, conn.transaction():
            await keys.touch(conn, used)

    def note_key_use(self, key_id: str) -> None:
        """Remember that a key was used now (written in batches; see storage.key_usage)."""
        if self._home is None:
            self._started()
        self._key_usage.note(key_id)

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
            lambda conn: organizations.create(
                conn,
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
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._read(lambda conn: organizations.read(conn, org_id))

    async def find_org_by_name(self, name: str) -> dict[str, Any] | None:
        """The oldest organization with exactly this name, if any."""
        if _has_nul(name):
            return None
        return await self._read(lambda conn: organizations.find_by_name(conn, name))

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
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._write(
            lambda conn: organizations.modify(
                conn,
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
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._write(
            lambda conn: organizations.set_operator_fields(conn, org_id, fields, actor)
        )

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(
        self, *, org_id: str, key_hash: str, prefix: str, scopes: list[str], actor: Actor
    ) -> dict[str, Any]:
        """Store a new key's hash and record api_key.created."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._write(
            lambda conn: keys.create(
                conn, org_id=org_id, key_hash=key_hash, prefix=prefix, scopes=scopes, actor=actor
            )
        )

    async def key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key stored under this SHA-256 hash, revoked or not. Not cached: every request
        reads the key row, so a revocation is seen by every instance at once."""
        return await self._read(lambda conn: keys.by_hash(conn, key_hash))

    async def revoke_key(self, key_id: str, actor: Actor) -> dict[str, Any]:
        """Revoke a key (idempotent); records api_key.revoked the first time."""
        if _has_nul(key_id):
            raise NotFoundError(key_id)
        return await self._write(lambda conn: keys.revoke(conn, key_id, actor))

    # -- brands -------------------------------------------------------------------------------

    async def create_brand(
        self, *, org_id: str, status: str, campaigns: int, actor: Actor
    ) -> dict[str, Any]:
        """Register a brand for an organization and record brand.created."""
        if _has_nul(org_id):
            raise NotFoundError(org_id)
        return await self._write(
            lambda conn: brands.create(
                conn, org_id=org_id, status=status, campaigns=campaigns, actor=actor
            )
        )

    async def delete_brand(self, brand_id: str, actor: Actor) -> dict[str, Any]:
        """Delete a brand and record brand.deleted."""
        if _has_nul(brand_id):
            raise NotFoundError(brand_id)
        return await self._write(lambda conn: brands.delete(conn, brand_id, actor))

    # -- audit --------------------------------------------------------------------------------

    async def list_events(
        self, org_id: str, *, limit: int, before_seq: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events newest first; the page and the position to continue before, if any."""
        if _has_nul(org_id):
            return [], None
        return await self._read(
            lambda conn: audit.page(conn, org_id, limit=limit, before_seq=before_seq)
        )

    async def verify_audit(self, org_id: str | None = None) -> dict[str, Any]:
        """Recompute the hash chains (see the interface) from one snapshot."""
        if _has_nul(org_id):
            return verdict([])

        async def check(conn: AsyncConnection) -> dict[str, Any]:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                await conn.execute("SET LOCAL statement_timeout = 0")
                chains = await audit.chain(conn, org_id)
            return verdict(chains)

        return await self._call(lambda: self._with_connection(check), bound=3600)

    async def _with_connection(self, fn: Work[T]) -> T:
        assert self._pool is not None
        async with self._pool.connection() as conn:
            return await fn(conn)
