"""Access to the per-request context from inside a Flask handler."""

from __future__ import annotations

from typing import Any

from connexion import context


def request_context() -> dict[str, Any]:
    """The dict RequestContext put in the ASGI scope (services, request id, parsed body)."""
    return context.scope["orgsettings"]
