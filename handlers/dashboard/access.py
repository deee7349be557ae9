"""Who may read and change an organization's dashboard settings, and the shared read/write.

Security (401) and the body schema (400) have run before these; the rules JSON Schema cannot
express come next, then the role check (403), then the lookup (404), as the spec orders them.
"""

from __future__ import annotations

from typing import Any

from handlers.errors import Forbidden, NotFound
from handlers.http import request_context
from handlers.services import Services
from storage import Mutator, NotFoundError

WRITE_ROLES = ("ADMIN",)


def may_read(token_info: dict[str, Any], org_id: str) -> None:
    """A member of the organization (any role) or a SUPERADMIN; else 403."""
    if not (token_info["role"] == "SUPERADMIN" or token_info["organization_id"] == org_id):
        raise Forbidden(details="you are not a member of this organization")


def may_write(token_info: dict[str, Any], org_id: str) -> None:
    """An ADMIN of the organization or a SUPERADMIN; else 403."""
    role = token_info["role"]
    own = role in WRITE_ROLES and token_info["organization_id"] == org_id
    if not (role == "SUPERADMIN" or own):
        raise Forbidden(
            details="only an ADMIN of this organization or a SUPERADMIN may change its settings"
        )


async def read_org(services: Services, org_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    """The organization, for a caller allowed to read it."""
    may_read(token_info, org_id)
    try:
        return await services.store.get_org(org_id)
    except NotFoundError:
        raise not_found() from None


async def read_org_as_writer(
    services: Services, org_id: str, token_info: dict[str, Any]
) -> dict[str, Any]:
    """The organization, for a caller allowed to change it (a change that changes nothing)."""
    may_write(token_info, org_id)
    try:
        return await services.store.get_org(org_id)
    except NotFoundError:
        raise not_found() from None


async def change_org(
    services: Services, org_id: str, token_info: dict[str, Any], mutate: Mutator
) -> dict[str, Any]:
    """Apply ``mutate`` (audited as the signed-in user) for a caller allowed to change it."""
    may_write(token_info, org_id)
    try:
        org, _event = await services.store.modify_org(
            org_id,
            mutate,
            actor={"type": "user", "id": token_info["sub"], "role": token_info["role"]},
            surface="dashboard",
            request_id=request_context.request_id(),
        )
    except NotFoundError:
        raise not_found() from None
    return org


def not_found() -> NotFound:
    """The dashboard's published 404."""
    return NotFound(
        "Organization not found",
        details="No organization exists with the provided id",
        dashboard_message="Organization not found",
    )
