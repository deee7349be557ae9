"""The one place that turns any error into a surface's error body.

The developer API (/v1) answers ``{"success": false, "error": {code, message, details,
request_id}}``; the dashboard API (/api) answers ``{"error": "...", "details": "..."}`` as its
published pages do. Handlers, the auth layer and the validators raise the ``ApiError``
subclasses of ``handlers.errors``; Connexion's and Starlette's own errors, and the storage
layer's ``StorageUnavailable``, are translated here too, so no client ever sees Connexion's
default problem+json.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from connexion.exceptions import (
    BadRequestProblem,
    OAuthProblem,
    OAuthScopeProblem,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from handlers.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from handlers.http import request_context
from handlers.http.routes import Route
from storage import StorageUnavailable

log = logging.getLogger("orgsettings.errors")


def from_exception(exc: Exception) -> ApiError:
    """Translate any exception into an ApiError (unknown ones become a bare 500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StorageUnavailable):
        return ServiceUnavailable(details=exc.reason, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, OAuthScopeProblem):
        return Forbidden()
    if isinstance(exc, OAuthProblem):
        return Unauthorized(details=_detail(exc))
    if isinstance(exc, UnsupportedMediaTypeProblem):
        return UnsupportedMediaType(details=_detail(exc))
    if isinstance(exc, BadRequestProblem):
        return BadRequest(details=_detail(exc))
    if isinstance(exc, ProblemException):
        return _by_status(exc.status, _detail(exc))
    if isinstance(exc, HTTPException):
        err = _by_status(exc.status_code, None)
        # Starlette's 405 for a docs route (POST /v1/ui, say) names the methods it allows.
        if isinstance(err, MethodNotAllowed) and (exc.headers or {}).get("Allow"):
            methods = sorted(m.strip() for m in exc.headers["Allow"].split(","))
            err.headers["Allow"] = ", ".join(methods)  # Starlette's order is a set's
        return err
    return ApiError()


def _detail(exc: ProblemException) -> str | None:
    return str(exc.detail) if exc.detail else None


def _by_status(status: int, detail: str | None) -> ApiError:
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        PayloadTooLarge,
        UnsupportedMediaType,
        ServiceUnavailable,
    ):
        if cls.status == status:
            return cls() if cls is Unauthorized else cls(details=detail)
    if 400 <= status < 500:
        err = BadRequest(details=detail)
        err.status = status
        return err
    return ApiError()


def render(err: ApiError, route: Route, request_id: str) -> tuple[int, bytes, dict]:
    """The status, JSON body and headers of ``err`` in the shape of ``route``'s surface."""
    if route.is_dashboard:
        status, body = _dashboard_body(err, route)
    else:
        status = err.status
        error: dict[str, Any] = {"code": err.code, "message": err.message}
        if err.details is not None:
            # v1 details are always an object; a bare sentence goes under "reason".
            details = err.details
            error["details"] = (
                bounded(details) if isinstance(details, dict) else {"reason": str(details)}
            )
        error["request_id"] = request_id
        body = {"success": False, "error": error}
    return status, json.dumps(body).encode(), dict(err.headers)


def _dashboard_body(err: ApiError, route: Route) -> tuple[int, dict[str, Any]]:
    """The dashboard's ``{"error", "details"}``: the operation's own published sentence where
    its spec declares one (``x-error-sentences``), else the error's."""
    if err.status >= 500 and not isinstance(err, ServiceUnavailable):
        return err.status, {"error": route.fault_sentence or err.dashboard_message}
    if isinstance(err, ValidationFailed):
        fields = err.details if isinstance(err.details, dict) else {}
        sentence = (
            route.invalid_sentence
            if route.invalid_sentence and route.names_invalid_field(fields)
            else err.dashboard_message
        )
        return 400, {"error": sentence, "details": _flatten(err.details)}
    body: dict[str, Any] = {"error": err.dashboard_message or err.message}
    body["details"] = _flatten(err.details) if err.details is not None else err.message
    return err.status, body


def _flatten(details: Any) -> str:
    """Dashboard ``details`` is a string: join a field map into one readable sentence."""
    if isinstance(details, dict):
        text = "; ".join(f"{k}: {v}" if k else str(v) for k, v in bounded(details).items())
    else:
        text = str(details)
    return text if len(text) <= MAX_DETAILS_TEXT else text[: MAX_DETAILS_TEXT - 1] + "\u2026"


# Error details are bounded whatever the request held (the specs state these limits).
#: Entries of a details map shown at most.
MAX_DETAILS = 50
#: Characters of a details key shown at most.
MAX_KEY = 200
#: Characters of a details text value shown at most.
MAX_VALUE = 500
#: Characters of the dashboard's flattened ``details`` sentence at most.
MAX_DETAILS_TEXT = 4096


def bounded(details: dict[str, Any]) -> dict[str, Any]:
    """At most MAX_DETAILS entries, keys and text values cut to their limits; an entry
    ``"\u2026"`` says how many more were left out."""
    shown: dict[str, Any] = {}
    for number, (key, value) in enumerate(details.items()):
        if number == MAX_DETAILS:
            shown["\u2026"] = f"{len(details) - MAX_DETAILS} more not shown"
            break
        name = key if len(key) <= MAX_KEY else key[: MAX_KEY - 1] + "\u2026"
        if isinstance(value, str) and len(value) > MAX_VALUE:
            value = value[: MAX_VALUE - 1] + "\u2026"
        shown[name] = value
    return shown


class ErrorRenderer:
    """The handler Connexion calls for every exception (``add_error_handler``)."""

    async def __call__(self, request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        """Render ``exc`` in the shape of the request's surface."""
        info = request_context.current()
        err = from_exception(exc)
        route = info.route
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            # No route took the path (Starlette's router): say so in the surface's words.
            reason = "no such resource"
            err = NotFound(details=reason.capitalize() if route.is_dashboard else {"path": reason})
        if err.status >= 500 and not isinstance(err, ServiceUnavailable):
            log.error("unhandled error", exc_info=exc, extra={"request_id": info.request_id})
        if isinstance(err, MethodNotAllowed) and route.allow is not None:
            # A spec path's methods come from the spec; others (docs, probes) from the router.
            err.headers["Allow"] = route.allow
        status, body, headers = render(err, route, info.request_id)
        return ConnexionResponse(
            status_code=status, body=body, headers=headers, mimetype="application/json"
        )
