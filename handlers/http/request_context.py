"""What one request carries through the layers: its id, its route, and the actor once auth
knows it.

The outermost middleware (handlers.http.middleware) sets it, with the route it matched once;
auth reads the route's scopes and adds the actor; handlers read the request id for the audit
event; the error handler reads the route; the access log and the metrics read all of it. A
context variable, because each request runs in its own task and every layer runs inside that
task.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from handlers.http.routes import UNROUTED, Route

#: ``RequestInfo.body`` of a request whose body was not validated (none was sent, or the
#: operation takes none).
NO_BODY: Any = object()


@dataclass
class RequestInfo:
    """The request id (X-Request-Id), its route in the specs, the authenticated actor's id
    when there is one, headers a layer below wants on the response (RateLimit-*), the
    response's status once it has started (500 until then), and the arguments the request
    validators checked (path and query parameters as Connexion's URI parser made them, the
    parsed body), which the operation's function is called with."""

    request_id: str
    route: Route = UNROUTED
    actor_id: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    status: int = 500
    path_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    body: Any = NO_BODY


_current: ContextVar[RequestInfo | None] = ContextVar("orgsettings_request", default=None)


def begin(request_id: str, route: Route = UNROUTED) -> RequestInfo:
    """Start a request's info in the current context (the middleware calls this)."""
    info = RequestInfo(request_id, route)
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
