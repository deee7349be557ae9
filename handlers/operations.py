"""Lean Flask view functions for the spec's operations, decorated once at start-up.

Stock Connexion's ``FlaskOperation.fn`` is a property: on every request it builds a new
decorator chain around the handler, calling ``inspect.signature`` again, building a new URI
parser (which re-reads the request body definition and, for operations accepting two media
types, logs a warning each time) and converting every parameter through generic code. Routing,
security and validation have already run in Connexion's middleware by then, so the view only has
to pass the handler what it asks for and serialize the answer. These views do that with
everything worked out once per operation.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import flask
from connexion.context import context

_CONVERT: dict[str, Callable[[str], Any]] = {"integer": int, "number": float}


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """operationId -> operation, with the path item's shared parameters merged in."""
    found = {}
    for item in spec["paths"].values():
        shared = item.get("parameters", [])
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                found[op["operationId"]] = {**op, "parameters": shared + op.get("parameters", [])}
    return found


class LeanOperation:
    """A view that calls one handler with path params, query params and token_info."""

    def __init__(self, handler: Callable[..., Any], spec: dict[str, Any], op: dict[str, Any]):
        self.handler = handler
        self.__name__ = getattr(handler, "__name__", "operation")
        accepted = set(inspect.signature(handler).parameters)
        self.wants_token_info = "token_info" in accepted
        self.path_names = []
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

    def __call__(self, **view_args: Any) -> flask.Response:
        kwargs: dict[str, Any] = {name: view_args[name] for name in self.path_names}
        if self.query:
            args = flask.request.args
            for name, convert, default in self.query:
                raw = args.get(name)
                if raw is not None:
                    kwargs[name] = convert(raw)
                elif default is not None:
                    kwargs[name] = default
        if self.wants_token_info:
            kwargs["token_info"] = context["token_info"]
        return _respond(self.handler(**kwargs))


def _respond(result: Any) -> flask.Response:
    status, headers = 200, None
    if isinstance(result, tuple):
        body, status, *rest = result
        headers = rest[0] if rest else None
    else:
        body = result
    payload = json.dumps(body, separators=(",", ":"))
    return flask.Response(payload, status=status, headers=headers, mimetype="application/json")


def install(app: flask.Flask, spec: dict[str, Any]) -> int:
    """Replace Connexion's per-request-decorating views of ``spec``'s operations with lean ones.

    Returns how many views were replaced (a test checks none is left behind).
    """
    operations = _operations(spec)
    replaced = 0
    for endpoint, view in list(app.view_functions.items()):
        operation_id = getattr(view, "operation_id", None)
        if operation_id in operations and hasattr(view, "_fn"):
            app.view_functions[endpoint] = LeanOperation(view._fn, spec, operations[operation_id])
            replaced += 1
    return replaced
