"""The outermost ASGI layer: request id, body limit, response headers, one JSON log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from handlers.errors import ApiError, PayloadTooLarge, RequestTimeout
from handlers.http import request_context
from handlers.http.log_format import ACCESS_FIELDS
from handlers.http.metrics import Metrics
from handlers.http.rate_limit import RateLimits
from handlers.http.rendering import render
from handlers.http.routes import RouteTable
from handlers.http.validation import replay

access_log = logging.getLogger("orgsettings.access")

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: How long the server waits for the next piece of a request body before answering 408. Without
#: it, a client that declares a Content-Length and then stalls holds a connection (and, on a
#: write, a request slot) forever. ``Config.extra["body_timeout_seconds"]`` overrides it.
BODY_TIMEOUT_SECONDS = 10.0


class RequestContext:
    """Gives every request an id, a size and time limit on its body, the common response
    headers and one JSON access-log line."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        log_requests: bool,
        limits: RateLimits,
        metrics: Metrics | None,
        routes: RouteTable,
        body_timeout_seconds: float = BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics
        self.routes = routes
        self.max_body = max_body_bytes
        self.log_requests = log_requests
        self.body_timeout = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Connexion records each request's routing in scope["extensions"]; a server that hands
        # every request the same extensions dict (Granian 2.x does) would let concurrent
        # requests overwrite each other's routing. Each request gets a dict of its own.
        scope = {**scope, "extensions": dict(scope.get("extensions") or {})}
        logged_path = scope["path"]
        if "\n" in logged_path:
            # Starlette's mounts match the rest of a path with ".*", which stops at a newline, so
            # /api/organizations/a%0Ab/... would match no route (404 "no such resource") although
            # its id is schema-valid. No id holds a newline, so the router sees U+FFFD in its
            # place (same length, same schema verdict) and the id is treated as any unknown one.
            scope = {**scope, "path": logged_path.replace("\n", "\ufffd")}
        info = request_context.begin(
            _request_id(scope), self.routes.match(scope["method"], scope["path"])
        )
        status_seen = 500
        extra = [
            (b"x-request-id", info.request_id.encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                late = [(k.lower().encode(), v.encode()) for k, v in info.response_headers.items()]
                drop = {name for name, _ in extra + late}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in drop]
                message = {**message, "headers": headers + extra + late}
            await send(message)

        address = (scope.get("client") or ("",))[0]
        try:
            length = _content_length(scope)
            if refused := self.limits.refused(address):
                await self._reject(refused, scope, info.request_id, send_with_headers, close=False)
            elif length is not None and length > self.max_body:
                await self._reject(PayloadTooLarge(), scope, info.request_id, send_with_headers)
            elif length == 0 or (length is None and not _is_chunked(scope)):
                # No body is coming (a GET, say): nothing to count or time, so skip the wrapper.
                await self.app(scope, receive, send_with_headers)
            elif scope["method"] in _BODILESS:
                # The operations of these methods take no body, so nothing after this layer
                # reads one: read it here, so a stalled upload still gets its 408.
                limited = self._limited(receive)
                try:
                    messages = await _read_all(limited)
                except ApiError as err:
                    await self._reject(err, scope, info.request_id, send_with_headers)
                    return
                await self.app(scope, replay(messages, limited), send_with_headers)
            else:
                await self.app(scope, self._limited(receive), send_with_headers)
        finally:
            if status_seen == 401:
                self.limits.failed_authentication(address)
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                route = info.route
                self.metrics.request(route.surface, route.operation, status_seen, seconds)
            if self.log_requests:
                fields = {
                    "request_id": info.request_id,
                    "method": scope["method"],
                    "path": logged_path,
                    "status": status_seen,
                    "duration_ms": round(seconds * 1000, 2),
                    "actor_id": info.actor_id,
                }
                access_log.info("request", extra={ACCESS_FIELDS: fields})

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive, so a missing or lying Content-Length can't pass.

        Until the body is complete each read waits at most ``body_timeout``: a client that
        stalls mid-body gets 408 and the connection is closed. Later reads (a wait for the
        client's disconnect) are not timed.
        """
        received = 0
        complete = False
        limit = self.max_body
        timeout = self.body_timeout

        async def receive_limited() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                # asyncio.timeout, not wait_for: no extra Task per read on the request path.
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge()
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return receive_limited

    @staticmethod
    async def _reject(
        err: ApiError, scope: Scope, request_id: str, send: Send, close: bool = True
    ) -> None:
        status, body, headers = render(err, request_context.current().route, request_id)
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if close:
            # The body was not read: ask the client to close rather than reuse the connection.
            raw_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


_BODILESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


async def _read_all(receive: Receive) -> list[Message]:
    """Every message of the request body (or up to the client's disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            try:
                candidate = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return str(ULID())


def _is_chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
