"""Connexion's routing middleware, remembering where each method and path went."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.routing import RoutingMiddleware, RoutingOperation
from connexion.middleware.routing import _scope as routing_scope
from starlette.types import Receive, Scope, Send

#: How many (method, path) routes are remembered; the table is emptied when it is full, so a
#: client walking through many paths (one per organization on /api) cannot grow it without end.
MAX_ROUTES = 4096

#: The key of the request being routed the slow way, for the operation it reaches to record.
_routing: ContextVar[tuple[str, str, str] | None] = ContextVar("routing", default=None)


def _root_path(scope: Scope) -> str:
    return scope.get("route_root_path", scope.get("root_path", ""))


class CachedRoutingMiddleware(RoutingMiddleware):
    """Routes each (method, path) through Starlette's router once, then from a table.

    Stock routing walks a Starlette router per request: each API's mount, then the API's routes
    (one per method), each a regular expression, before the operation found attaches its id and
    path parameters to the scope. That walk was 5-7% of a request in profiles. Here the first
    request to a method and path takes the walk; the operation it reaches records what it
    attached, and later requests get the same from the table. Only requests that reached an
    operation are remembered: 404s, 405s and trailing-slash redirects always take the walk.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._routes: dict[tuple[str, str, str], tuple[RoutingOperation, dict, str]] = {}

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        """Mount one API's routes, each operation wrapped to record where requests went."""
        super().add_api(*args, **kwargs)
        for mount in self.router.routes:
            for route in getattr(mount.app, "routes", ()):
                if isinstance(route.app, RoutingOperation):
                    route.app = _Recorder(route.app, self._routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        known = self._routes.get(key)
        if known is None:
            token = _routing.set(key)
            try:
                await super().__call__(scope, receive, send)
            finally:
                _routing.reset(token)
            return
        operation, path_params, api_base_path = known
        # What RoutingOperation attaches, to the same shallow copy of the scope it would use.
        routed = scope.copy()
        routed.setdefault("path_params", {}).update(path_params)
        extensions = routed.setdefault("extensions", {})
        extensions.setdefault(ROUTING_CONTEXT, {}).update(
            {"api_base_path": api_base_path, "operation_id": operation.operation_id}
        )
        await operation.next_app(routed, receive, send)


class _Recorder:
    """Stands in for one RoutingOperation on Starlette's router: records, then delegates."""

    def __init__(self, operation: RoutingOperation, routes: dict) -> None:
        self.operation = operation
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _routing.get()
        if key is not None and self.operation.operation_id is not None:
            if len(self.routes) >= MAX_ROUTES:
                self.routes.clear()
            api_base_path = _root_path(scope)[len(_root_path(routing_scope.get())) :]
            self.routes[key] = (self.operation, dict(scope.get("path_params", {})), api_base_path)
        await self.operation(scope, receive, send)
