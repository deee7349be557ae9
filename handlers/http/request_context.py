"""What one request carries through the layers: its id, and the actor once auth knows it.

The outermost middleware (handlers.http.middleware) sets it; auth adds the actor; handlers read
the request id for the audit event; the access log and the error handler read both. A context
variable, because each request runs in its own task and every layer runs inside that task.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestInfo:
    """The request id (X-Request-Id), the authenticated actor's id when there is one, and
    headers a layer below wants on the response (RateLimit-*)."""

    request_id: str
    actor_id: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)


_current: ContextVar[RequestInfo | None] = ContextVar("orgsettings_request", default=None)


def begin(request_id: str) -> RequestInfo:
    """Start a request's info in the current context (the middleware calls this)."""
    info = RequestInfo(request_id)
    _current.set(info)
    return info


def current() -> RequestInfo:
    """The current request's info (an empty one outside a request)."""
    return _current.get() or RequestInfo("")


def request_id() -> str:
    """The current request's id."""
    return current().request_id


def set_actor(actor_id: str) -> None:
    """Note who is making the current request, for the access log."""
    info = _current.get()
    if info is not None:
        info.actor_id = actor_id


def add_response_headers(headers: dict[str, str]) -> None:
    """Headers to send with the current request's response, whatever its status."""
    info = _current.get()
    if info is not None:
        info.response_headers.update(headers)
