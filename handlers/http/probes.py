"""The service index and the liveness and readiness probes: no auth, outside both specs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from storage import Store

Probe = Callable[[Request], Awaitable[JSONResponse]]


def index(metrics: bool) -> Probe:
    """GET /: where the specs, their Swagger UIs, the probes and the metrics are."""
    body: dict[str, Any] = {
        "service": "orgsettings",
        "specs": {"v1": "/v1/openapi.json", "dashboard": "/api/openapi.json"},
        "docs": {"v1": "/v1/ui/", "dashboard": "/api/ui/"},
        "probes": {"health": "/healthz", "ready": "/readyz"},
    }
    if metrics:
        body["probes"]["metrics"] = "/metrics"

    async def probe(_request: Request) -> JSONResponse:
        return JSONResponse(body)

    return probe


def healthz() -> Probe:
    """GET /healthz: the process answers. It never touches the database."""

    async def probe(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return probe


def readyz(store: Store) -> Probe:
    """GET /readyz: the database answers within its bounded wait, fully migrated."""

    async def probe(_request: Request) -> JSONResponse:
        if await store.is_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    return probe
