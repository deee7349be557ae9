"""Liveness and readiness probes; they need no auth and live outside both specs."""

from __future__ import annotations

from typing import Any

from flask import Flask


def register(app: Flask, services: Any) -> None:
    """Add GET /healthz (the process answers) and GET /readyz (database reachable, migrated)."""

    def healthz() -> tuple[dict[str, Any], int]:
        """The process is up."""
        return {"status": "ok"}, 200

    def readyz() -> tuple[dict[str, Any], int]:
        """The database answers and is at the schema version this code expects."""
        if services.store.is_ready():
            return {"status": "ready"}, 200
        return {"status": "not ready"}, 503

    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])
