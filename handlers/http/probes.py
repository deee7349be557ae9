"""Liveness and readiness probes; they need no auth and live outside both specs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from storage import Store

Probe = Callable[[Request], Awaitable[JSONResponse]]


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
