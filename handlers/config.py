"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB = "var/orgsettings.db"
SECRET_FILE_NAME = "jwt_secret"


@dataclass(frozen=True)
class Config:
    """Everything the app and the CLI need to know about their surroundings."""

    db_path: Path = Path(DEFAULT_DB)
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = 30
    max_body_bytes: int = 64 * 1024
    log_requests: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, db_path: str | Path | None = None) -> Config:
        """Build the config from ORGSETTINGS_* variables; ``db_path`` overrides ORGSETTINGS_DB."""
        env = os.environ
        path = Path(db_path or env.get("ORGSETTINGS_DB") or DEFAULT_DB)
        public_key = None
        if key_path := env.get("ORGSETTINGS_JWT_PUBLIC_KEY"):
            public_key = Path(key_path).read_text()
        return cls(
            db_path=path,
            jwt_secret=env.get("ORGSETTINGS_JWT_SECRET") or None,
            jwt_public_key=public_key,
            jwt_issuer=env.get("ORGSETTINGS_JWT_ISSUER") or None,
            jwt_audience=env.get("ORGSETTINGS_JWT_AUDIENCE") or None,
            log_requests=env.get("ORGSETTINGS_LOG_REQUESTS", "1") != "0",
        )

    @property
    def secret_file(self) -> Path:
        """Where the generated HS256 secret lives when ORGSETTINGS_JWT_SECRET is unset."""
        return self.db_path.parent / SECRET_FILE_NAME

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
