"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB = "var/orgsettings.db"
SECRET_FILE_NAME = "jwt_secret"
#: Appended to the database's file name: the file that remembers the demo organization's id.
DEMO_ORG_SUFFIX = ".demo_org_id"
#: How ``serve`` hands its workers the directory they share (Config.workers_dir).
WORKERS_DIR_ENV = "ORGSETTINGS_WORKERS_DIR"
#: The metrics' directory in it (prometheus-client's PROMETHEUS_MULTIPROC_DIR).
WORKERS_METRICS_SUBDIR = "metrics"


@dataclass(frozen=True)
class Config:
    """Everything the app and the CLI need to know about their surroundings."""

    #: An SQLite file's path, or a ``postgresql://`` URL (PostgreSQL 13 or later).
    database: str = DEFAULT_DB
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = 30
    max_body_bytes: int = 64 * 1024
    #: How long a client may take to send the next piece of a request body (then 408).
    body_timeout_seconds: float = 10.0
    #: How long the server waits for a request head (and an idle keep-alive connection for
    #: its next one) before closing the connection.
    header_timeout_seconds: float = 10.0
    #: The bound on every wait for the database (a write that cannot start: 503).
    db_wait_seconds: float = 5.0
    #: PostgreSQL: connections each process keeps at most (ORGSETTINGS_DB_POOL_SIZE).
    db_pool_size: int = 10
    #: PostgreSQL: the server cancels a statement running longer (then 503).
    db_statement_timeout_seconds: float = 5.0
    #: PostgreSQL: how long opening a connection may take (libpq counts whole seconds, >= 2).
    db_connect_timeout_seconds: float = 5.0
    #: Where the generated JWT secret and the demo organization's id are kept: by default
    #: the SQLite file's directory, or ``var`` for PostgreSQL (ORGSETTINGS_STATE_DIR).
    state_dir: Path | None = None
    #: How often API keys' last_used_at is written (its granularity).
    key_usage_seconds: float = 30.0
    #: Failed authentications per client address and minute before it gets 429 (0: off).
    auth_failures_per_minute: int = 30
    #: Requests per API key and minute (0: no limit); RateLimit-* headers when on.
    key_requests_per_minute: int = 0
    #: GET /metrics (Prometheus text format); off: 404.
    metrics: bool = True
    #: Set by ``serve --workers N`` (N > 1), never by hand: the private directory of this run
    #: through which its workers share the metrics and the failed-authentication counts
    #: (ORGSETTINGS_WORKERS_DIR). None: the app keeps both to itself.
    workers_dir: Path | None = None
    #: Whether the app may create a missing database. From the environment (the server) it
    #: may not: only ``init`` and ``demo`` create one.
    create_database: bool = True
    log_requests: bool = True

    @classmethod
    def from_env(cls, database: str | Path | None = None) -> Config:
        """Build the config from ORGSETTINGS_* variables; ``database`` overrides ORGSETTINGS_DB."""
        env = os.environ
        location = str(database or env.get("ORGSETTINGS_DB") or DEFAULT_DB)
        public_key = None
        if key_path := env.get("ORGSETTINGS_JWT_PUBLIC_KEY"):
            try:
                public_key = Path(key_path).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
                raise ValueError(
                    f"ORGSETTINGS_JWT_PUBLIC_KEY: cannot read {key_path}: {reason}"
                ) from None
        return cls(
            database=location,
            jwt_secret=env.get("ORGSETTINGS_JWT_SECRET") or None,
            jwt_public_key=public_key,
            jwt_issuer=env.get("ORGSETTINGS_JWT_ISSUER") or None,
            jwt_audience=env.get("ORGSETTINGS_JWT_AUDIENCE") or None,
            log_requests=env.get("ORGSETTINGS_LOG_REQUESTS", "1") != "0",
            metrics=env.get("ORGSETTINGS_METRICS", "1") != "0",
            create_database=False,
            header_timeout_seconds=_header_timeout(env),
            db_wait_seconds=_seconds(env, "ORGSETTINGS_DB_WAIT_SECONDS", 5.0),
            db_pool_size=_pool_size(env),
            db_statement_timeout_seconds=_seconds(
                env, "ORGSETTINGS_DB_STATEMENT_TIMEOUT_SECONDS", 5.0
            ),
            db_connect_timeout_seconds=_seconds(env, "ORGSETTINGS_DB_CONNECT_TIMEOUT_SECONDS", 5.0),
            state_dir=Path(env["ORGSETTINGS_STATE_DIR"])
            if env.get("ORGSETTINGS_STATE_DIR")
            else None,
            auth_failures_per_minute=_count(env, "ORGSETTINGS_AUTH_FAILURES_PER_MINUTE", 30),
            workers_dir=Path(env[WORKERS_DIR_ENV]) if env.get(WORKERS_DIR_ENV) else None,
            key_requests_per_minute=_count(env, "ORGSETTINGS_KEY_REQUESTS_PER_MINUTE", 0),
        )

    @property
    def is_postgresql(self) -> bool:
        """True when ``database`` is a PostgreSQL URL."""
        from storage import is_postgresql_url

        return is_postgresql_url(self.database)

    @property
    def db_path(self) -> Path:
        """The SQLite file; a PostgreSQL database has none (ValueError)."""
        if self.is_postgresql:
            raise ValueError("a PostgreSQL database has no file path")
        return Path(self.database)

    @property
    def shown_database(self) -> str:
        """The database as output and logs show it: a URL without its password."""
        if self.is_postgresql:
            from storage.postgresql.store import redacted

            return redacted(self.database)
        return self.database

    @property
    def state_path(self) -> Path:
        """Where the generated secret and the demo organization's id live (see state_dir)."""
        if self.state_dir is not None:
            return self.state_dir
        return Path(DEFAULT_DB).parent if self.is_postgresql else self.db_path.parent

    @property
    def secret_file(self) -> Path:
        """Where the generated HS256 secret lives when ORGSETTINGS_JWT_SECRET is unset.

        Instances on several machines must share one secret: set ORGSETTINGS_JWT_SECRET (or
        ORGSETTINGS_JWT_PUBLIC_KEY) on each of them.
        """
        return self.state_path / SECRET_FILE_NAME

    @property
    def demo_org_file(self) -> Path:
        """Where ``orgsettings demo`` remembers its organization's id.

        One file per database: ``<db>.demo_org_id`` beside an SQLite file (like ``<db>.lock``),
        or ``postgresql-<digest of the URL>.demo_org_id`` in the state directory.
        """
        if self.is_postgresql:
            digest = hashlib.sha256(self.database.encode()).hexdigest()[:16]
            return self.state_path / f"postgresql-{digest}{DEMO_ORG_SUFFIX}"
        return self.db_path.with_name(self.db_path.name + DEMO_ORG_SUFFIX)

    def hs256_secret(self, create: bool = False) -> str | None:
        """The HS256 secret: the configured one, else the generated file (made if ``create``)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.secret_file
        if path.exists():
            return path.read_text().strip()
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # O_EXCL: two processes racing to create it cannot both write different secrets.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        return secret


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from the environment; ``default`` when unset."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value < 3600:
        raise ValueError(f"{name} must be between 0 and 3600 seconds")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number from 0 to 1,000,000 from the environment; ``default`` when unset."""
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 1_000_000:
        raise ValueError(f"{name} must be a whole number from 0 to 1000000, not {raw!r}")
    return int(raw)


def _pool_size(env: Mapping[str, str]) -> int:
    """ORGSETTINGS_DB_POOL_SIZE: 1 to 1000 connections per process, else 10."""
    size = _count(env, "ORGSETTINGS_DB_POOL_SIZE", 10)
    if not 1 <= size <= 1000:
        raise ValueError("ORGSETTINGS_DB_POOL_SIZE must be a whole number from 1 to 1000")
    return size


def _header_timeout(env: Mapping[str, str]) -> float:
    """ORGSETTINGS_HEADER_TIMEOUT_SECONDS: 0.001 to 60 (the server counts whole ms), else 10."""
    name = "ORGSETTINGS_HEADER_TIMEOUT_SECONDS"
    raw = env.get(name, "").strip()
    if not raw:
        return 10.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0.001 <= seconds <= 60.0:
        raise ValueError(f"{name} must be a number of seconds from 0.001 to 60.0")
    return seconds
