"""Connexion's request-validation middleware, with its per-operation set-up done once.

Stock ``RequestValidationOperation`` rebuilds, on every request, two URI parsers, a parameter
validator, the media-type table and a body validator, and looks up the operation's body
definition four times (each a wildcard media-type match, and for PATCH /v1/organization a
logged warning about its two media types). In a profile of PATCH that set-up cost about as much
as the validation itself. Here it happens once per operation, at start-up; what runs per request
is the validation.
"""

from __future__ import annotations

from typing import Any

from connexion import utils
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import UnsupportedMediaTypeProblem
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from starlette.types import ASGIApp, Receive, Scope, Send

_MAX_CONTENT_TYPES = 32


class CachedRequestValidationOperation(RequestValidationOperation):
    """Validates one operation's requests with parsers and validators built once."""

    def __init__(self, next_app: ASGIApp, *, operation: Any, **kwargs: Any) -> None:
        super().__init__(next_app, operation=operation, **kwargs)
        body_definition = operation.body_definition() if operation.request_body else {}
        self._uri_parser = operation._uri_parser_class(operation.parameters, body_definition)
        self._parameters = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=self._uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        consumes = operation.consumes or []
        self._accepted = MediaTypeDict([(c.lower(), None) for c in consumes]) if consumes else None
        self._bodies: dict[tuple[str, str], Any] = {}
        #: Content-Type header value -> (mime type, encoding, accepted by the operation). A
        #: client sends the same few values, and working one out (header scan, parse, wildcard
        #: media-type match) was 3% of a PATCH; the table stops growing at _MAX_CONTENT_TYPES.
        self._content_types: dict[bytes | None, tuple[str, str, bool]] = {}

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        key = (mime_type, encoding)
        if key not in self._bodies:
            operation = self._operation
            schema = operation.body_schema(mime_type)
            validator = None
            if schema:
                try:
                    validator_cls = self._validator_map["body"][mime_type]
                except KeyError:
                    validator_cls = None
                if validator_cls is not None:
                    validator = validator_cls(
                        schema=schema,
                        required=operation.request_body.get("required", False),
                        nullable=utils.is_nullable(operation.body_definition(mime_type)),
                        encoding=encoding,
                        strict_validation=self.strict_validation,
                        uri_parser=self._uri_parser,
                    )
            self._bodies[key] = validator
        return self._bodies[key]

    def _content_type(self, raw: bytes | None) -> tuple[str, str, bool]:
        """Stock Connexion's reading of one Content-Type value (None: header absent)."""
        mime_type, encoding = self.extract_content_type(
            [] if raw is None else [(b"content-type", raw)]
        )
        accepted = self._accepted is None or mime_type.lower() in self._accepted
        return mime_type, encoding, accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameters.validate(scope)
        raw = None
        for name, value in scope["headers"]:
            if name.lower() == b"content-type":
                raw = value
                break
        known = self._content_types.get(raw)
        if known is None:
            known = self._content_type(raw)
            if len(self._content_types) < _MAX_CONTENT_TYPES:
                self._content_types[raw] = known
        mime_type, encoding, accepted = known
        if not accepted:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {self._operation.consumes}"
            )
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class CachedRequestValidationAPI(RequestValidationAPI):
    """The validation API that makes cached operations."""

    def make_operation(self, operation: Any) -> CachedRequestValidationOperation:
        return CachedRequestValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class CachedRequestValidationMiddleware(RequestValidationMiddleware):
    """Drop-in for Connexion's RequestValidationMiddleware."""

    api_cls = CachedRequestValidationAPI
