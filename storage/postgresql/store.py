"""The PostgreSQL backend of ``storage.store.Store``, for many instances over one database.

Connections come from a psycopg_pool ``AsyncConnectionPool`` that lives on one event loop: the
one that calls ``start`` (a server's worker in its lifespan, the CLI in its ``asyncio.run``),
which then makes every call. psycopg's waits are awaits that never block the loop, and a call
costs no hop between threads. Every write is one transaction on one connection: it locks the
organization's row (``SELECT ... FOR UPDATE``) before it reads, checks and writes the record and
its audit event, so concurrent writers in any number of instances never overwrite each other's
fields and an ``If-Match`` race has exactly one winner.

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
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

import storage.postgresql
from storage.errors import NotFoundError, StorageUnavailable
from storage.key_usage import KeyUsage
from storage.postgresql import audit, keys, migrations
from storage.store import Store

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


class PostgresStore(Store):
    """One PostgreSQL database; see the module docstring."""

    sql = storage.postgresql

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
        super().__init__(wait_seconds=wait_seconds, key_usage=key_usage)
        self.url = url
        self.pool_size = pool_size
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        #: The bound on one call: a connection, a lock, a statement or two, and a reconnect.
        self.bound = wait_seconds + statement_timeout + connect_timeout
        self._pool: AsyncConnectionPool | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._flush_now: asyncio.Event | None = None
        self._closed = False
        #: The event loop that started the store: the pool's, and every call's.
        self._home: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        #: Calls in flight, which ``close`` lets finish (within the bound).
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
        """Open the pool on the running event loop, which makes every later call; starting
        again on that loop does nothing."""
        if self._closed:
            raise StorageUnavailable("the store is closed", retry_after=5)
        if self._home is not None:
            self._check_loop()
            return
        self._home = asyncio.get_running_loop()
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
        home, flush_now = self._home, self._flush_now
        self._key_usage.on_full = lambda: home.call_soon_threadsafe(flush_now.set)
        self._flusher = asyncio.create_task(self._flush_key_usage())

    def _check_loop(self) -> None:
        """A programming error, said plainly: the pool belongs to the loop that started it."""
        if self._home is None:
            raise RuntimeError("the PostgreSQL store is used before start()")
        if asyncio.get_running_loop() is not self._home:
            raise RuntimeError("the PostgreSQL store is used from a loop that did not start it")

    async def _call(self, work: Callable[[], Awaitable[T]], bound: float | None = None) -> T:
        """Run ``work`` within the bound; faults become StorageUnavailable."""
        self._check_loop()
        if self._closed:
            raise StorageUnavailable("the store is closed", retry_after=5)
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
        raise self._fault(error)

    async def _read(self, fn: Work[T], *args: Any, **kwargs: Any) -> T:
        """``await fn(conn, ...)`` on a pooled connection, outside any transaction."""

        async def work() -> T:
            assert self._pool is not None
            for attempt in range(1, ATTEMPTS + 1):
                conn: AsyncConnection | None = None
                try:
                    async with self._pool.connection() as conn:
                        return await fn(conn, *args, **kwargs)
                except psycopg.OperationalError:
                    # A connection that died while idle in the pool (the server restarted):
                    # a read is safe to run again on a fresh one.
                    if conn is None or not conn.broken or attempt == ATTEMPTS:
                        raise
            raise AssertionError("unreachable")

        return await self._call(work)

    async def _write(self, fn: Work[T], *args: Any, **kwargs: Any) -> T:
        """``await fn(conn, ...)`` in one transaction, run again on a conflict PostgreSQL asks
        to retry."""

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
                            result = await fn(conn, *args, **kwargs)
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

    async def _audit_chains(self, org_id: str | None) -> list[list[dict[str, Any]]]:
        """Every chain (or one) from one REPEATABLE READ snapshot, with no statement timeout:
        a large trail takes as long as it takes (up to an hour)."""

        async def chains() -> list[list[dict[str, Any]]]:
            assert self._pool is not None
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                await conn.execute("SET LOCAL statement_timeout = 0")
                return await audit.chain(conn, org_id)

        return await self._call(chains, bound=3600)

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
        """Let calls in flight finish (within the bound), write pending key uses, close the
        pool; on the loop that started the store. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._home is None:
            return  # never started: nothing open
        self._check_loop()
        self._stopping = True
        assert self._flush_now is not None and self._flusher is not None
        self._flush_now.set()
        await asyncio.wait({*self._in_flight, self._flusher}, timeout=self.bound)
        try:
            await self._flush(force=True)
        finally:
            assert self._pool is not None
            await self._pool.close(timeout=self.bound)

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
