"""Logging for ``orgsettings serve``: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys

from handlers.http.log_format import JsonLineFormatter


def configure_logging() -> None:
    """The access log and errors as JSON lines; Connexion's per-request warnings quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("orgsettings")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    # The server's own warnings (Granian: bind failures, worker restarts) are Granian's to log,
    # at the level `serve` passes it (log_level=warning).
    # The logging HOWTO's "Optimization" knobs: the log lines carry none of this.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Connexion logs a warning on every 4xx and on every request to an operation that accepts
    # two media types (PATCH /v1/organization); our own error handler logs what matters.
    logging.getLogger("connexion").setLevel(logging.ERROR)
