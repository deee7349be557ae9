"""The outermost ASGI layer: request id, route, body limit, response headers, one log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.errors import ApiError, PayloadTooLarge, RequestTimeout
from handlers.http import request_context
from handlers.http.log_format import ACCESS_FIELDS
from handlers.http.metrics import Metrics
from handlers.http.rate_limit import RateLimits
from handlers.http.rendering import render
from handlers.http.request_context import RequestInfo
from handlers.http.routes import RouteTable
from handlers.http.validation import replay
from storage.ulids import new_ulid

access_log = logging.getLogger("orgsettings.access")

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: How long the server waits for the next piece of a request body before answering 408, unless
#: ``Config.body_timeout_seconds`` says otherwise. Without it, a client that declares a
#: Content-Length and then stalls holds a connection (and, on a write, a request slot) forever.
BODY_TIMEOUT_SECONDS = 10.0
#: Headers every response carries, besides its X-Request-Id.
COMMON_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))


class RequestContext:
    """Gives every request an id and its route, a size and time limit on its body, the common
    response headers and one JSON access-log line."""

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
        """One request: its own scope, its id and route in its context, admission past the
        limits, and the accounting once it is answered (whatever happened)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        logged_path = scope["path"]
        scope = _own_scope(scope)
        info = request_context.begin(
            _request_id(scope), self.routes.match(scope["method"], scope["path"])
        )
        try:
            await self._admit(scope, receive, _with_headers(send, info), info)
        finally:
            self._account(scope, logged_path, info, time.perf_counter() - started)

    async def _admit(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo) -> None:
        """Refuse what is over a limit before it is read; pass the rest on, its body counted
        and timed when it has one."""
        length = _content_length(scope)
        if refused := self.limits.refused(_address(scope)):
            await _reject(refused, info, send, close=False)
        elif length is not None and length > self.max_body:
            await _reject(PayloadTooLarge(), info, send)
        elif length == 0 or (length is None and not _is_chunked(scope)):
            # No body is coming (a GET, say): nothing to count or time, so skip the wrapper.
            await self.app(scope, receive, send)
        elif scope["method"] in _BODILESS:
            # The operations of these methods take no body, so nothing after this layer
            # reads one: read it here, so a stalled upload still gets its 408.
            limited = self._limited(receive, _declared_length(scope, length))
            try:
                messages = await _read_all(limited)
            except ApiError as err:
                await _reject(err, info, send)
                return
            await self.app(scope, replay(messages, limited), send)
        else:
            await self.app(scope, self._limited(receive, _declared_length(scope, length)), send)

    def _account(self, scope: Scope, path: str, info: RequestInfo, seconds: float) -> None:
        """What an answered request leaves behind: a refused credential counted against its
        address, its metrics and its access-log line (``path`` as the client sent it)."""
        if info.status == 401:
            self.limits.failed_authentication(_address(scope))
        if self.metrics is not None:
            self.metrics.request(info.route.surface, info.route.operation, info.status, seconds)
        if self.log_requests:
            fields = {
                "request_id": info.request_id,
                "method": scope["method"],
                "path": path,
                "status": info.status,
                "duration_ms": round(seconds * 1000, 2),
                "actor_id": info.actor_id,
            }
            access_log.info("request", extra={ACCESS_FIELDS: fields})

    def _limited(self, receive: Receive, declared: int | None) -> Receive:
        """Count body bytes as they arrive, so a missing or lying Content-Length can't pass.

        Until the body is complete each read waits at most ``body_timeout``: a client that
        stalls mid-body gets 408 and the connection is closed. Later reads (a wait for the
        client's disconnect) are not timed.

        ``declared`` is the Content-Length of a body that is not chunked. Once that many bytes
        have arrived the body is complete, and the message that brought the last of them says
        so (``more_body`` false). Granian marks every chunk ``more_body`` and ends the body
        with an empty message of its own, which would cost each request one more read (a
        wake-up of the loop from the server's thread); that message is then left unread.
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
            if message["type"] != "http.request":
                complete = True
                return message
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge()
            complete = not message.get("more_body", False)
            if not complete and received == declared:
                complete = True
                return {**message, "more_body": False}
            return message

        return receive_limited


def _own_scope(scope: Scope) -> Scope:
    """The request's scope as the layers below see it: an ``extensions`` dict of its own, and
    a path the router can match."""
    # Connexion records each request's routing in scope["extensions"]; a server that hands
    # every request the same extensions dict (Granian 2.x does) would let concurrent
    # requests overwrite each other's routing. Each request gets a dict of its own.
    scope = {**scope, "extensions": dict(scope.get("extensions") or {})}
    if "\n" in scope["path"]:
        # Starlette's mounts match the rest of a path with ".*", which stops at a newline, so
        # /api/organizations/a%0Ab/... would match no route (404 "no such resource") although
        # its id is schema-valid. No id holds a newline, so the router sees U+FFFD in its
        # place (same length, same schema verdict) and the id is treated as any unknown one.
        scope["path"] = scope["path"].replace("\n", "\ufffd")
    return scope


def _with_headers(send: Send, info: RequestInfo) -> Send:
    """``send`` that notes the response's status and adds the common headers, the request id
    and what a layer below asked for (``info.response_headers``) to its start."""
    extra = [(b"x-request-id", info.request_id.encode()), *COMMON_HEADERS]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            info.status = message["status"]
            late = [(k.lower().encode(), v.encode()) for k, v in info.response_headers.items()]
            drop = {name for name, _ in extra + late}
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in drop]
            message = {**message, "headers": headers + extra + late}
        await send(message)

    return send_with_headers


async def _reject(err: ApiError, info: RequestInfo, send: Send, close: bool = True) -> None:
    """Answer ``err`` without passing the request on."""
    status, body, headers = render(err, info.route, info.request_id)
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
    return new_ulid()


def _address(scope: Scope) -> str:
    return (scope.get("client") or ("",))[0]


def _is_chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope["headers"])


def _declared_length(scope: Scope, length: int | None) -> int | None:
    """The body's length when its Content-Length settles it: given, and not chunked."""
    return None if length is None or _is_chunked(scope) else length


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
