"""Access to the per-request context from inside a handler."""

from __future__ import annotations

from typing import Any

from connexion import context


def request_context() -> dict[str, Any]:
    """The dict RequestContext put in the ASGI scope (services, request id, parsed body)."""
    return context.scope["orgsettings"]


def request_header(name: str) -> str | None:
    """The request's ``name`` header (lower case), repeated values joined with commas."""
    wanted = name.encode("latin-1")
    values = [v.decode("latin-1") for k, v in context.scope["headers"] if k == wanted]
    return ",".join(values) if values else None
