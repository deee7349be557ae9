"""Request validation with each operation's validators built once, not on every request.

Connexion's ``RequestValidationMiddleware`` builds, on every request, the operation's URI
parser (twice), its parameter validator, its body validator and a media-type table for its
content types (``body_definition`` four times, each a fnmatch walk): about 70 us of a PATCH's
CPU on one core in issue 20's profile, more than validating the body itself. Here:

- ``ValidationOffTheApiPath`` takes that middleware's place in the ``middlewares`` list. A
  request for a spec operation (its route matched once by the outermost middleware) goes
  straight on, to be validated by ``OperationCaller`` before anything else reads it; every other
  request goes through a ``ConnexionMiddleware`` of its own holding Connexion's
  ``RequestValidationMiddleware``, given the APIs as the app's was, so it is validated exactly as
  before (which, for a request Connexion did not route, is not at all).
- ``OperationValidation`` runs for one operation what Connexion's ``RequestValidationOperation``
  runs, in the same order and with the same validator classes (the app's ``validator_map``),
  their objects built on the operation's first request: parameters, then the media type (415
  ``UnsupportedMediaTypeProblem`` for one the operation does not consume), then the body.
  Our validators keep nothing between requests: what they checked goes on ``RequestInfo``.
"""

from __future__ import annotations

from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import UnsupportedMediaTypeProblem
from connexion.middleware import ConnexionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.utils import is_nullable, split_content_type
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.http import request_context

#: Media types past this many distinct spellings are checked on each request, not remembered:
#: what a client sends must not grow the server's memory.
REMEMBERED_MEDIA_TYPES = 16


class ValidationOffTheApiPath:
    """Spec operations pass straight on (``OperationCaller`` validates them); everything else
    meets Connexion's own request validation."""

    def __init__(
        self, app: ASGIApp, *, apis: list[tuple[dict[str, Any], str, dict[str, Any]]]
    ) -> None:
        """``apis``: (spec, base path, ``add_api`` options) of each API, as the app has them."""
        self.app = app
        self.connexion = ConnexionMiddleware(
            app, import_name=__name__, middlewares=[RequestValidationMiddleware]
        )
        for spec, base_path, options in apis:
            self.connexion.add_api(spec, base_path=base_path, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a spec operation on; send the rest through Connexion's validation."""
        if scope["type"] != "http" or request_context.current().route.operation_id is not None:
            await self.app(scope, receive, send)
        else:
            await self.connexion(scope, receive, send)


class OperationValidation:
    """What Connexion's request validation checks for one operation, its validators kept."""

    def __init__(self, operation: Any, validators: dict[str, Any], strict: bool) -> None:
        """``operation``: Connexion's (``connexion.context.operation``), read here only;
        ``validators``: the API's ``validator_map``; ``strict``: its ``strict_validation``."""
        self.validators = validators
        self.strict = strict
        self.uri_parser = operation.uri_parser_class(
            operation.parameters, operation.body_definition()
        )
        self.parameters = validators["parameter"](
            operation.parameters,
            uri_parser=self.uri_parser,
            strict_validation=strict,
            security_query_params=_security_query_params(operation),
        )
        self.consumes = list(operation.consumes)
        self.accepted = MediaTypeDict([(c.lower(), None) for c in self.consumes])
        self.required = operation.request_body.get("required", False)
        #: Each media type's body definition (its schema with the spec's components), found as
        #: Connexion finds it (``MediaTypeDict``), by the media type in lower case.
        self.definitions = MediaTypeDict(
            {media.lower(): operation.body_definition(media) for media in self.consumes}
        )
        #: (media type, encoding) -> its body validator, or None when it has no body schema.
        self._bodies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
        """Validate the request; the scope and receive channel to go on with (the body, read
        to validate it, is replayed). Raises what the validators raise."""
        self.parameters.validate(scope)
        mime_type, encoding = self._content_type(scope["headers"])
        body = self._body_validator(mime_type, encoding)
        if body is None:
            return scope, receive
        receive, scope = await body.wrap_receive(receive, scope=scope)
        return scope, receive

    def _content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """The media type and charset, as ``RequestValidationOperation.extract_content_type``
        has them: the first Content-Type header, else the operation's first media type."""
        content_type = next(
            (v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), None
        )
        mime_type, encoding = split_content_type(content_type)
        if mime_type is None:
            mime_type = self.consumes[0] if self.consumes else "application/octet-stream"
        return mime_type, encoding or "utf-8"

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        """The body validator for this media type (None: no body schema), after the media type
        check; remembered for the first REMEMBERED_MEDIA_TYPES spellings."""
        key = (mime_type, encoding)
        if key in self._bodies:
            return self._bodies[key]
        media = mime_type.lower()
        if self.consumes and media not in self.accepted:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {self.consumes}"
            )
        validator = self._new_body_validator(media, encoding)
        if len(self._bodies) < REMEMBERED_MEDIA_TYPES:
            self._bodies[key] = validator
        return validator

    def _new_body_validator(self, media: str, encoding: str) -> Any:
        """Media types are case-insensitive (RFC 9110): ``Application/JSON`` gets the body
        validation of ``application/json``. (Connexion looks the body schema up by the type as
        sent, and skips validation when the case differs from the spec's.)"""
        definition = self.definitions.get(media, {})
        schema = definition.get("schema", {})
        if not schema:
            return None
        try:
            validator_class = self.validators["body"][media]
        except KeyError:
            return None  # Connexion skips validation for a media type it has no validator for
        return validator_class(
            schema=schema,
            required=self.required,
            nullable=is_nullable(definition),
            encoding=encoding,
            strict_validation=self.strict,
            uri_parser=self.uri_parser,
        )


def _security_query_params(operation: Any) -> list[str]:
    """The query parameters that carry credentials (an ``apiKey`` scheme ``in: query``), which
    strict validation does not call unknown."""
    names: list[str] = []
    for requirement in operation.security or []:
        for scheme_name in requirement:
            scheme = operation.security_schemes[scheme_name]
            if scheme["type"] == "apiKey" and scheme["in"] == "query":
                names.append(scheme["name"])
    return names
