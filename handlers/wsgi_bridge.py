"""The ASGI -> WSGI bridge in front of Flask, replacing Connexion's default (a2wsgi).

a2wsgi runs each request on a worker thread and hops back to the event loop for every message
the response sends (start, each body chunk, end), each hop a round trip through
``run_coroutine_threadsafe``. Profiling showed most of a GET's wall time in those hops and the
thread wake-ups around them, and worker threads competing with the loop for the GIL. This
bridge reads the (already size-limited, already validated) body once and runs the WSGI call to
completion inline on the event loop, then sends the buffered response:

- reads are a few indexed SQLite reads in WAL mode, which never wait for a writer;
- writes first wait (asynchronously) for a write transaction of the group commit
  (storage.writer), run their read-check-write inline in it, and are answered only after the
  COMMIT of their batch, which runs on the commit thread, has returned.
"""

from __future__ import annotations

import contextvars
import io
import sys
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from storage.writer import GroupCommit

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def build_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ for an ASGI HTTP scope (PEP 3333)."""
    environ: dict[str, Any] = {
        "asgi.scope": scope,
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf8").decode("latin1"),
        "PATH_INFO": scope["path"].encode("utf8").decode("latin1"),
        "QUERY_STRING": scope["query_string"].decode("latin1"),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    server = scope.get("server") or ("localhost", 80)
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(server[1] or 0)
    if client := scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client[0], str(client[1])
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin1")
        if name == "content-length":
            key = "CONTENT_LENGTH"
        elif name == "content-type":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = raw_value.decode("latin1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ["CONTENT_LENGTH"] = str(len(body))
    return environ


class BufferedWSGIBridge:
    """An ASGI app that serves a WSGI app inline on the event loop, writes via group commit."""

    def __init__(self, app: Any, group: GroupCommit | None) -> None:
        self.app = app
        self.group = group

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        environ = build_environ(scope, b"".join(chunks))
        call = contextvars.copy_context().run
        if self.group is None or scope["method"] in READ_METHODS:
            status, headers, body = call(self._call, environ)
        else:
            status, headers, body = await self.group.write_inline(lambda: call(self._call, environ))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return lambda data: body.append(data)

        body: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            body.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        raw = [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), raw, b"".join(body)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
