"""The typed errors every layer raises: a status, a machine code, a message and details.

Handlers, the rules, the auth layer and the validators raise these; ``handlers.http.rendering``
turns each (and every framework error) into the envelope of the request's surface. This module
imports nothing from the rest of ``handlers``, so every layer may import it.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error with a status, a machine code, a human message and optional details."""

    status = 500
    code = "INTERNAL"
    message = "internal error"
    #: The ``error`` sentence on the dashboard surface (None: ``message``). An operation's
    #: spec may publish its own for a server fault or a schema error (``x-error-sentences``).
    dashboard_message: str | None = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
        dashboard_message: str | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        self.headers = headers or {}
        if dashboard_message is not None:
            self.dashboard_message = dashboard_message


class InvalidJson(ApiError):
    status, code, message = 400, "INVALID_JSON", "request body is not valid JSON"
    dashboard_message = "Invalid JSON body"


class BadRequest(ApiError):
    status, code, message = 400, "BAD_REQUEST", "bad request"
    dashboard_message = "Bad request"


class Unauthorized(ApiError):
    status, code, message = 401, "UNAUTHORIZED", "authentication failed"
    dashboard_message = "Unauthorized"

    def __init__(self, details: Any = None, **kwargs: Any) -> None:
        super().__init__(details=details, headers={"WWW-Authenticate": "Bearer"}, **kwargs)


class Forbidden(ApiError):
    status, code, message = 403, "FORBIDDEN", "missing required scope"
    dashboard_message = "Forbidden"


class NotFound(ApiError):
    status, code, message = 404, "NOT_FOUND", "resource not found"
    dashboard_message = "Not found"


class MethodNotAllowed(ApiError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "method not allowed"
    dashboard_message = "Method not allowed"


class RequestTimeout(ApiError):
    """The client declared a body and stopped sending it (a slow or lying Content-Length)."""

    status, code, message = 408, "REQUEST_TIMEOUT", "request body was not received in time"
    dashboard_message = "Request timeout"


class PreconditionFailed(ApiError):
    status, code, message = 412, "PRECONDITION_FAILED", "If-Match does not match the current ETag"
    dashboard_message = None


class PayloadTooLarge(ApiError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "request body is larger than 64 KiB"
    dashboard_message = "Payload too large"


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", "unsupported content type"
    dashboard_message = "Unsupported media type"


class ValidationFailed(ApiError):
    """Schema violations: ``details`` maps every offending dotted field path to a message."""

    status, code, message = 422, "VALIDATION_FAILED", "request validation failed"
    dashboard_message = "Validation error"


class RateLimited(ApiError):
    """Past a rate limit (handlers.http.rate_limit); ``Retry-After`` says for how long."""

    status, code, message = 429, "RATE_LIMITED", "too many requests"
    dashboard_message = "Too many requests"


class ServiceUnavailable(ApiError):
    """The database could not take the request within its bounded wait; nothing changed."""

    status, code, message = 503, "SERVICE_UNAVAILABLE", "service temporarily unavailable"
    dashboard_message = "Service unavailable"


class RuleViolation(ApiError):
    """A business rule JSON Schema cannot express (RESELLER_*, ATTESTATION_REQUIRED, ...)."""

    status = 422
    dashboard_message = None
