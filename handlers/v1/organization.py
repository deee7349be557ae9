"""Developer API (/v1): the organization the API key belongs to."""

from __future__ import annotations

from typing import Any

from connexion import context

from handlers.errors import NotFound, PreconditionFailed
from handlers.http import request_context
from handlers.rules.organization import apply_v1_patch
from handlers.services import Services
from handlers.specs import load_spec, schema_properties
from storage import NotFoundError, VersionMismatchError

#: The fields the developer API shows, in the order of the spec's Organization schema.
V1_FIELDS = tuple(schema_properties(load_spec("v1.yaml"), "Organization"))

Response = tuple[dict[str, Any], int, dict[str, str]]


def v1_view(org: dict[str, Any]) -> dict[str, Any]:
    """The developer API's view of an organization record."""
    return {name: org[name] for name in V1_FIELDS}


def etag(org: dict[str, Any]) -> str:
    """The strong ETag of a record: its version, quoted."""
    return f'"{org["version"]}"'


def if_match(values: list[str]):
    """A version check for the If-Match header values (None when the header is absent)."""
    if not values:
        return None
    tags = {tag.strip() for value in values for tag in value.split(",")}
    return lambda version: "*" in tags or f'"{version}"' in tags


def _answer(org: dict[str, Any]) -> Response:
    return {"success": True, "data": v1_view(org)}, 200, {"ETag": etag(org)}


async def get_organization(services: Services, token_info: dict[str, Any]) -> Response:
    """GET /v1/organization: the record the key check read with the key (see
    KeyAuthenticator), so a GET makes one read; None there when the organization is gone."""
    org = token_info["organization"]
    if org is None:
        raise NotFound("organization not found")
    return _answer(org)


async def patch_organization(
    services: Services, body: dict[str, Any], token_info: dict[str, Any]
) -> Response:
    """PATCH /v1/organization: all or nothing, audited, conditional on If-Match."""
    try:
        org, _event = await services.store.modify_org(
            token_info["organization_id"],
            lambda org: apply_v1_patch(org, body),
            actor={"type": "api_key", "id": token_info["key_id"], "role": None},
            surface="v1",
            request_id=request_context.request_id(),
            if_version=if_match(context.request.headers.getlist("if-match")),
        )
    except NotFoundError:
        raise NotFound("organization not found") from None
    except VersionMismatchError as exc:
        raise PreconditionFailed(
            details={"If-Match": f"current ETag is {etag(exc.current)}"}
        ) from None
    return _answer(org)
