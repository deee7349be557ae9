"""Dashboard API (/api): an organization's contact protection period."""

from __future__ import annotations

from typing import Any

from handlers.dashboard.access import change_org, read_org
from handlers.services import Services

Response = tuple[dict[str, Any], int]


def _view(org: dict[str, Any]) -> dict[str, Any]:
    return {"contactProtectionPeriod": org["contact_protection_period"]}


async def get_contact_protection_settings(
    services: Services, organizationId: str, token_info: dict[str, Any]
) -> Response:
    """Read the organization's contact protection period."""
    org = await read_org(services, organizationId, token_info)
    return {"success": True, "data": _view(org)}, 200


async def put_contact_protection_settings(
    services: Services, organizationId: str, body: dict[str, Any], token_info: dict[str, Any]
) -> Response:
    """Set the contact protection period (the schema has already checked it is 0-720)."""
    period = body["contactProtectionPeriod"]

    def mutate(org: dict[str, Any]) -> tuple[dict[str, Any], None]:
        org["contact_protection_period"] = period
        return org, None

    org = await change_org(services, organizationId, token_info, mutate)
    return {
        "success": True,
        "message": "Contact protection settings updated",
        "data": _view(org),
    }, 200
