"""The last middleware: each spec operation's function, called with what the validators checked.

Connexion's ``AsyncOperation`` builds the handler's whole decorator chain again on every call
(the function's signature inspected, a new request object and URI parser, the body parsed a
second time, the response's content type worked out). ``OperationCaller`` stands last in the
documented ``middlewares`` list, behind Connexion's ``ContextMiddleware``, and calls the
operation's function itself, as Connexion's parameter and response decorators would:

- the function's arguments are looked up once per operation;
- path and query arguments are the values ``StrictParameterValidator`` checked (Connexion's URI
  parser made them), a query parameter left out gets its schema's ``default``;
- ``body`` is the value ``BodyValidator`` checked (the schema's ``default``, else ``{}``, when
  no body was sent), so nothing is parsed here and the value validated is the value used;
- ``token_info`` and ``user`` come from ``connexion.context.context``;
- the answer may be ``body``, ``(body, status)`` or ``(body, status, headers)``; the body is
  serialized by the app's Jsonifier, with the operation's one JSON media type.

Before any of that it validates the request (``OperationValidation``: Connexion's checks with
each operation's validators built once; ``ValidationOffTheApiPath`` took Connexion's request
validation off the API's path), whenever Connexion routed it to an operation: also when it then
passes the request on, so nothing reaches a handler unvalidated.

A request whose operation it cannot tell (the index, the probes, the docs, an unrouted path)
goes on to Connexion unchanged. ``refuse_unsupported`` checks at start-up that the specs use
nothing this does not handle.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connexion.context import context as security_context
from connexion.context import operation as routed_operation
from connexion.jsonifier import Jsonifier
from connexion.utils import is_json_mimetype
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.http import request_context
from handlers.http.request_validation import OperationValidation

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
#: The argument names Connexion fills from its context (the security middleware's results).
CONTEXT_ARGUMENTS = ("token_info", "user")


class UnsupportedSpec(ValueError):
    """A spec uses a feature ``OperationCaller`` does not handle."""


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """What calling one operation needs, worked out once."""

    function: Callable[..., Any]
    #: Names of the query parameters the function takes, with their defaults (if any).
    query: frozenset[str]
    query_defaults: dict[str, Any]
    #: The argument that takes the body (None: the function takes none).
    body_argument: str | None
    body_default: Any
    context_arguments: tuple[str, ...]
    media_type: str


class OperationCaller:
    """Calls spec operations' functions directly; passes everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        jsonifier: Jsonifier,
        validators: dict[str, dict[str, Any]],
        strict_validation: bool,
    ) -> None:
        """``validators``: each surface's ``validator_map``."""
        self.app = app
        self.jsonifier = jsonifier
        self.validators = validators
        self.strict_validation = strict_validation
        self._prepared: dict[str, PreparedCall] = {}
        #: Keyed by (surface, operationId): an operationId is unique within its spec.
        self._validations: dict[tuple[str, str], OperationValidation] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Validate a spec operation's request, and answer it from its function or pass it on."""
        info = request_context.current()
        operation_id = info.route.operation_id
        routed = _routed_to() if scope["type"] == "http" and operation_id is not None else None
        if routed is None:
            # Not a spec operation, or one Connexion did not route (which it validates no more
            # than it calls): ValidationOffTheApiPath passed the first kind through its own.
            await self.app(scope, receive, send)
            return
        surface = info.route.surface
        validation = self._validations.get((surface, routed))
        if validation is None:
            validation = OperationValidation(
                routed_operation, self.validators[surface], self.strict_validation
            )
            self._validations[(surface, routed)] = validation
        scope, receive = await validation(scope, receive)
        if routed != operation_id:
            await self.app(scope, receive, send)
            return
        call = self._prepared.get(operation_id)
        if call is None:
            call = self._prepared[operation_id] = prepare(routed_operation)
        kwargs: dict[str, Any] = dict(info.path_params)
        if call.query:
            kwargs.update(call.query_defaults)
            kwargs.update((k, v) for k, v in info.query_params.items() if k in call.query)
        if call.body_argument is not None:
            body = info.body
            if body is request_context.NO_BODY:
                body = copy.deepcopy(call.body_default)
            kwargs[call.body_argument] = body
        if call.context_arguments:
            found = security_context
            kwargs.update((k, found[k]) for k in call.context_arguments if k in found)
        response = self.response(call, await call.function(**kwargs))
        await response(scope, receive, send)

    def response(self, call: PreparedCall, answer: Any) -> Response:
        """The HTTP response for a handler's answer, as Connexion's response decorator builds it."""
        data, status, headers = _unpack(answer)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = call.media_type
        content = None if data is None else self.jsonifier.dumps(data)
        return Response(
            content=content,
            status_code=status or (200 if content is not None else 204),
            headers=headers,
            media_type=call.media_type,
        )


def _routed_to() -> str | None:
    """The operationId Connexion routed this request to, or None (no operation context)."""
    try:
        return routed_operation.operation_id
    except (LookupError, RuntimeError):
        return None


def prepare(operation: Any) -> PreparedCall:
    """The call of a Connexion operation, from its function's signature and its spec."""
    function = operation.function
    parameters = inspect.signature(function).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise UnsupportedSpec(f"{operation.operation_id}: a handler taking **kwargs")
    query = {p["name"]: p for p in operation.parameters if p["in"] == "query"}
    defaults = {
        name: param.get("schema", {})["default"]
        for name, param in query.items()
        if name in parameters and "default" in param.get("schema", {})
    }
    body_argument = None
    body_default: Any = {}
    if operation.is_request_body_defined:
        name = operation.body_name(None)
        if name in parameters:
            body_argument = name
            body_default = operation.body_schema().get("default", {})
    produces = sorted(set(operation.produces)) or ["application/json"]
    return PreparedCall(
        function=function,
        query=frozenset(name for name in query if name in parameters),
        query_defaults=defaults,
        body_argument=body_argument,
        body_default=body_default,
        context_arguments=tuple(name for name in CONTEXT_ARGUMENTS if name in parameters),
        media_type=produces[0],
    )


def _unpack(answer: Any) -> tuple[Any, int | None, dict[str, str]]:
    """A handler's answer as (data, status, headers); Connexion's three tuple forms."""
    if not isinstance(answer, tuple):
        return answer, None, {}
    if len(answer) == 1:
        return answer[0], None, {}
    if len(answer) == 2:
        data, second = answer
        if isinstance(second, int):
            return data, second, {}
        return data, None, dict(second)
    if len(answer) == 3:
        data, status, headers = answer
        return data, status, dict(headers or {})
    raise TypeError("a handler answers body, (body, status), or (body, status, headers)")


def refuse_unsupported(spec: dict[str, Any]) -> None:
    """Raise UnsupportedSpec when ``spec`` uses what ``OperationCaller`` does not handle: a
    request or response body that is not JSON, a cookie parameter, a path or query parameter
    whose name is not a Python identifier, an operation with more than one response media
    type."""
    for where, op in _operations(spec):
        for media in op.get("requestBody", {}).get("content", {}):
            if not is_json_mimetype(media):
                raise UnsupportedSpec(f"{where}: request body {media} (only JSON is handled)")
        produced = set()
        for code, response in op.get("responses", {}).items():
            for media in _resolve(spec, response).get("content", {}):
                if not is_json_mimetype(media):
                    raise UnsupportedSpec(f"{where} {code}: response {media} (only JSON)")
                produced.add(media)
        if len(produced) > 1:
            raise UnsupportedSpec(f"{where}: several response media types {sorted(produced)}")
        for param in op["parameters"]:
            param = _resolve(spec, param)
            if param["in"] == "cookie":
                raise UnsupportedSpec(f"{where}: cookie parameter {param['name']}")
            if param["in"] in ("path", "query") and not param["name"].isidentifier():
                raise UnsupportedSpec(f"{where}: parameter name {param['name']!r}")


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in _HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                yield (
                    f"{method.upper()} {path}",
                    {**op, "parameters": shared + op.get("parameters", [])},
                )


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its local ``$ref`` points to."""
    while "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node
