"""The end of Connexion's middleware stack: run the routed operation, or hand over to Flask.

Everything a spec operation needs has happened by the time a request gets here: Connexion's
routing middleware found the operation, its security middleware authenticated the caller and
its validation middleware checked parameters and body against the spec. ``Operation`` (see
handlers.operations for why) runs the handler straight from the ASGI scope, inline on the event
loop:

- reads are a few indexed SQLite reads in WAL mode, which never wait for a writer;
- writes first wait (asynchronously) for a write transaction of the group commit
  (storage.writer), run their read-check-write inline in it, and are answered only after the
  COMMIT of their batch has returned.

Requests no operation took (the health probes, paths outside both APIs) go on to Flask through
the WSGI bridge. A handler's exception propagates to Connexion's exception middleware, which
renders it in the surface's error shape, exactly as it did from Flask.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from handlers.operations import Operation
from handlers.wsgi_bridge import READ_METHODS, BufferedWSGIBridge
from storage.writer import GroupCommit


class OperationDispatcher:
    """ASGI app: routed spec operations run here, everything else goes to ``fallback``."""

    def __init__(
        self,
        operations: dict[str, Operation],
        fallback: BufferedWSGIBridge,
        group: GroupCommit | None,
    ) -> None:
        self.operations = operations
        self.fallback = fallback
        self.group = group

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routing = scope.get("extensions", {}).get("connexion_routing")
            operation = self.operations.get(routing.get("operation_id")) if routing else None
            if operation is not None:
                # A body the spec does not take (a GET's, say) is still read to its end first,
                # so a stalled upload gets its 408 as on every other path (a validated body has
                # been read already).
                if scope["orgsettings"]["body_unread"] and not await _drained(receive):
                    return  # the client went away
                if self.group is None or scope["method"] in READ_METHODS:
                    status, headers, body = operation(scope)
                else:
                    status, headers, body = await self.group.write_inline(lambda: operation(scope))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.fallback(scope, receive, send)


async def _drained(receive: Receive) -> bool:
    """Read the request body to its end; False when the client disconnected first."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        if not message.get("more_body", False):
            return True
