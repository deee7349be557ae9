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
        #: What extract_content_type makes of a request without a Content-Type header.
        self._no_content_type = self.extract_content_type([])

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameters.validate(scope)
        headers = scope["headers"]
        if any(name.lower() == b"content-type" for name, _ in headers):
            mime_type, encoding = self.extract_content_type(headers)
        else:
            mime_type, encoding = self._no_content_type
        if self._accepted is not None and mime_type.lower() not in self._accepted:
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
