"""The outermost ASGI layer: request id, body limit, response headers, one JSON log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from ulid import ULID

from handlers.errors import ApiError, PayloadTooLarge, RequestTimeout, render
from handlers.log_format import ACCESS_FIELDS

access_log = logging.getLogger("orgsettings.access")

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: How long the server waits for the next piece of a request body before answering 408. Without
#: it, a client that declares a Content-Length and then stalls holds a connection (and, on a
#: write, a request slot) forever. ``Config.extra["body_timeout_seconds"]`` overrides it.
BODY_TIMEOUT_SECONDS = 10.0


class RequestContext:
    """Gives every request an id and a context dict, and every response the common headers.

    The context dict lives at ``scope["orgsettings"]``; the middlewares below copy the scope
    shallowly, so auth and handlers write into the same dict (actor id for the log line, the
    parsed body).
    """

    def __init__(self, app: ASGIApp, services: Any, allow_for: Callable[[str], str]) -> None:
        self.app = app
        self.services = services
        self.allow_for = allow_for
        self.max_body = services.config.max_body_bytes
        self.log_requests = services.config.log_requests
        extra = getattr(services.config, "extra", None) or {}
        self.body_timeout = float(extra.get("body_timeout_seconds", BODY_TIMEOUT_SECONDS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        ctx: dict[str, Any] = {
            "request_id": request_id,
            "services": self.services,
            "actor_id": None,
            "allow_for": self.allow_for,
            "body_unread": False,
        }
        scope["orgsettings"] = ctx
        status_seen = 500
        extra = [
            (b"x-request-id", request_id.encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                drop = {name for name, _ in extra}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in drop]
                message = {**message, "headers": headers + extra}
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                await self._reject(PayloadTooLarge(), scope, request_id, send_with_headers)
            elif length == 0 or (length is None and not _is_chunked(scope)):
                # No body is coming (a GET, say): nothing to count or time, so skip the wrapper.
                await self.app(scope, receive, send_with_headers)
            else:
                ctx["body_unread"] = True
                await self.app(scope, self._limited(receive), send_with_headers)
        finally:
            if self.log_requests:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status_seen,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "actor_id": ctx["actor_id"],
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
    async def _reject(err: ApiError, scope: Scope, request_id: str, send: Send) -> None:
        status, body, headers = render(err, scope["path"], request_id, scope["method"])
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        # The body was not read: ask the client to close rather than reuse the connection.
        raw_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})


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
