"""Developer API (/v1): the organization the API key belongs to."""

from __future__ import annotations

from typing import Any

from handlers import rules
from handlers.context import request_context, request_header
from handlers.errors import NotFound, PreconditionFailed
from storage import NotFoundError, VersionMismatchError

#: The fields the developer API shows, in the order of the published example.
V1_FIELDS = (
    "id",
    "name",
    "billing_email",
    "plan",
    "throughput_tier",
    "tenant_type",
    "message_retention_days",
    "mms_retention_days",
    "is_reseller",
    "quiet_hours",
    "auto_replies",
    "registration_status",
    "created_at",
    "updated_at",
)

Response = tuple[dict[str, Any], int, dict[str, str]]


def v1_view(org: dict[str, Any]) -> dict[str, Any]:
    """The developer API's view of an organization record."""
    return {name: org[name] for name in V1_FIELDS}


def etag(org: dict[str, Any]) -> str:
    """The strong ETag of a record: its version, quoted."""
    return f'"{org["version"]}"'


def if_match(header: str | None):
    """A version check for an If-Match header (None when the header is absent)."""
    if header is None:
        return None
    tags = {tag.strip() for tag in header.split(",")}
    return lambda version: "*" in tags or f'"{version}"' in tags


def _answer(org: dict[str, Any]) -> Response:
    return {"success": True, "data": v1_view(org)}, 200, {"ETag": etag(org)}


def get_organization(token_info: dict[str, Any]) -> Response:
    """GET /v1/organization."""
    store = request_context()["services"].store
    try:
        return _answer(store.get_org(token_info["organization_id"]))
    except NotFoundError:
        raise NotFound("organization not found") from None


def patch_organization(token_info: dict[str, Any]) -> Response:
    """PATCH /v1/organization: all or nothing, audited, conditional on If-Match."""
    ctx = request_context()
    patch = ctx["body"]
    try:
        org, _event = ctx["services"].store.modify_org(
            token_info["organization_id"],
            lambda org: rules.apply_v1_patch(org, patch),
            actor={"type": "api_key", "id": token_info["key_id"], "role": None},
            surface="v1",
            request_id=ctx["request_id"],
            if_version=if_match(request_header("if-match")),
        )
    except NotFoundError:
        raise NotFound("organization not found") from None
    except VersionMismatchError as exc:
        raise PreconditionFailed(
            details={"If-Match": f"current ETag is {etag(exc.current)}"}
        ) from None
    return _answer(org)
