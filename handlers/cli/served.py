"""The app ``orgsettings serve`` runs: built in each worker process, after logging is set up.

Logging is process-wide, so it belongs to the server process rather than to ``create_app``
(tests build many apps in one process and configure nothing).
"""

from __future__ import annotations

import connexion

from handlers.cli.logs import configure_logging
from handlers.http.app import create_app


def app() -> connexion.AsyncApp:
    """uvicorn's app factory: JSON logging, then the app from the environment's config."""
    configure_logging()
    return create_app()
