"""The spec's operations as plain callables, resolved and analysed once at start-up.

Connexion's middleware has routed, authenticated and validated a request before it gets here,
and left what it found in the ASGI scope: the operation id and path parameters
(``extensions.connexion_routing``, ``path_params``) and the token info (``connexion_context``).
Stock Connexion then hands the request to Flask, which builds a WSGI environ, a Request, an app
and a request context, matches the URL a second time (werkzeug), and calls
``FlaskOperation.fn``: a property that builds a new decorator chain around the handler on every
request (``inspect.signature``, a new URI parser that, for operations accepting two media types,
logs a warning each time, generic parameter conversion), before serializing the answer into a
werkzeug Response. In a profile that was about a quarter of a GET's time.

An ``Operation`` does the part of that which this app needs: pass the handler its path
parameters, query parameters and token info, as its signature asks, and serialize what it
returns. ``handlers.dispatch`` calls it straight from the scope.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from connexion.utils import get_function_from_name
from starlette.types import Scope

#: An operation's answer on the wire: status, ASGI headers, body bytes.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

_CONVERT: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}
_JSON = (b"content-type", b"application/json")


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def spec_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """operationId -> operation, with the path item's shared parameters merged in."""
    found = {}
    for item in spec["paths"].values():
        shared = item.get("parameters", [])
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                found[op["operationId"]] = {**op, "parameters": shared + op.get("parameters", [])}
    return found


class Operation:
    """One handler, called with what its signature names, its answer serialized as JSON."""

    def __init__(self, handler: Callable[..., Any], spec: dict[str, Any], op: dict[str, Any]):
        self.handler = handler
        accepted = set(inspect.signature(handler).parameters)
        self.wants_token_info = "token_info" in accepted
        self.path_names: list[str] = []
        self.query: list[tuple[str, Callable[[str], Any], Any]] = []
        for param in (_resolve(spec, p) for p in op.get("parameters", [])):
            if param["name"] not in accepted:
                continue
            schema = _resolve(spec, param.get("schema", {}))
            if param["in"] == "path":
                self.path_names.append(param["name"])
            elif param["in"] == "query":
                convert = _CONVERT.get(schema.get("type", "string"), str)
                self.query.append((param["name"], convert, schema.get("default")))

    def __call__(self, scope: Scope) -> Answer:
        """Run the handler for a routed, authenticated, validated request."""
        path_params = scope.get("path_params", {})
        kwargs: dict[str, Any] = {name: path_params[name] for name in self.path_names}
        if self.query:
            args: dict[str, str] = {}
            # The first of repeated values, as werkzeug's ``args.get`` gives it.
            for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
                args.setdefault(name, value)
            for name, convert, default in self.query:
                raw = args.get(name)
                if raw is not None:
                    kwargs[name] = convert(raw)
                elif default is not None:
                    kwargs[name] = default
        if self.wants_token_info:
            extensions = scope.get("extensions", {})
            kwargs["token_info"] = extensions.get("connexion_context", {}).get("token_info")
        return respond(self.handler(**kwargs))


def respond(result: Any) -> Answer:
    """Serialize a handler's ``body`` or ``(body, status[, headers])`` as compact JSON."""
    status, headers = 200, None
    if isinstance(result, tuple):
        body, status, *rest = result
        headers = rest[0] if rest else None
    else:
        body = result
    # orjson: compact like json.dumps(separators=(",", ":")), UTF-8 rather than \u escapes, and
    # about a twentieth of the time for an organization (7.6 us -> 0.4 us measured).
    payload = orjson.dumps(body)
    raw = [_JSON, (b"content-length", str(len(payload)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    return status, raw, payload


def build(spec: dict[str, Any]) -> dict[str, Operation]:
    """operationId -> Operation for every operation of ``spec``, handlers imported now."""
    return {
        operation_id: Operation(get_function_from_name(operation_id), spec, op)
        for operation_id, op in spec_operations(spec).items()
    }
