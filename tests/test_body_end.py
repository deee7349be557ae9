"""A request body ends where its Content-Length says, whatever the server sends after it.

Granian marks every body chunk ``more_body`` and ends the body with an empty message of its
own; the app answers once the declared bytes are in, without waiting for that message. A body
without a Content-Length (chunked) still ends only when the server says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import JWT_SECRET, SyncStore, http_scope
from handlers.app import create_app
from handlers.config import Config

#: Long enough that no busy machine reaches it on a request that needs no more reads, short
#: enough that a request that does wait for one fails fast (408).
BODY_TIMEOUT = 1.0


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """``app`` with its lifespan started (its store open), stopped on exit."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, str]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()
        elif message["type"].startswith("lifespan.shutdown"):
            stopped.set()

    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(lifespan, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait_for(started.wait(), 30)
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(stopped.wait(), 30)
        await task


async def patch(app: Any, key: str, framing: list[tuple[bytes, bytes]], pieces: list[dict]):
    """PATCH /v1/organization with ``pieces`` as the server's body messages, after which the
    server sends nothing more; the response's status and body."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        *framing,
    ]
    scope = http_scope("PATCH", "/v1/organization", headers)
    queued = list(pieces)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queued:
            return queued.pop(0)
        await asyncio.sleep(3600)  # the server never sends its closing message
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with running(app):
        await asyncio.wait_for(app(scope, receive, send), 30)
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(payload)


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


BODY = json.dumps({"name": "Renamed Clinic"}).encode()
LENGTH = [(b"content-length", str(len(BODY)).encode())]
CHUNKED = [(b"transfer-encoding", b"chunked")]

CASES = {
    # The declared bytes are in: answered without the server's empty closing message.
    "whole body, more_body still set": (LENGTH, [chunk(BODY, True)], 200),
    "body in two pieces, the last still more_body": (
        LENGTH,
        [chunk(BODY[:5], True), chunk(BODY[5:], True)],
        200,
    ),
    "body, then the closing message": (LENGTH, [chunk(BODY, True), chunk(b"", False)], 200),
    # Fewer bytes than declared: the rest never comes, 408 at the body timeout.
    "short of its Content-Length": (LENGTH, [chunk(BODY[:-1], True)], 408),
    # No length to go by: the body ends only with the server's last message.
    "chunked, closing message never sent": (CHUNKED, [chunk(BODY, True)], 408),
    "chunked, then the closing message": (CHUNKED, [chunk(BODY, True), chunk(b"", False)], 200),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_body_ends_at_its_content_length(
    case: str,
    tmp_path: Path,
    database: str,
    store: SyncStore,
    org: dict[str, Any],
    make_key: Callable[..., str],
) -> None:
    framing, pieces, expected = CASES[case]
    key = make_key(org["id"], "org:read", "org:admin:write")
    config = Config(
        database=database,
        state_dir=tmp_path,
        jwt_secret=JWT_SECRET,
        log_requests=False,
        body_timeout_seconds=BODY_TIMEOUT,
    )
    status, answer = asyncio.run(patch(create_app(config), key, framing, pieces))
    assert status == expected, answer
    name = store.get_org(org["id"])["name"]
    if expected == 200:
        assert answer["data"]["name"] == "Renamed Clinic"
        assert name == "Renamed Clinic"
    else:
        assert answer["error"]["code"] == "REQUEST_TIMEOUT"
        assert name == org["name"]
