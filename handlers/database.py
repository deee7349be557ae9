"""The store a configuration names: the one place the app and the CLI open their database."""

from __future__ import annotations

from handlers.config import Config
from storage import Store, open_store


def configured_store(config: Config, *, create: bool) -> Store:
    """The store at ``config.database`` with the configured bounds (see ``open_store``)."""
    return open_store(
        config.database,
        wait_seconds=config.db_wait_seconds,
        key_usage_seconds=config.key_usage_seconds,
        create=create,
        pool_size=config.db_pool_size,
        statement_timeout=config.db_statement_timeout_seconds,
        connect_timeout=config.db_connect_timeout_seconds,
    )
