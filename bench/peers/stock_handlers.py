"""The handlers and bearer checks both stock Connexion peers serve (FlaskApp and AsyncApp).

Plain ``def`` functions doing the SQLite work in ``common.Store``, as a user of stock Connexion
with synchronous storage would write them: FlaskApp calls them on its worker thread, AsyncApp
runs them in Starlette's thread pool. The peers differ only in the app class.
"""

from __future__ import annotations

from typing import Any

from common import Store

store = Store()


def check_api_key(token: str) -> dict[str, Any] | None:
    """Bearer check for /v1: the key must hash to an unrevoked row in api_keys."""
    org_id = store.org_for_key(token)
    return {"sub": org_id} if org_id else None


def check_any_bearer(token: str) -> dict[str, Any]:
    """Bearer check for /api: any token is accepted (the peer has no JWTs)."""
    return {"sub": "bench"}


def get_organization(token_info: dict[str, Any]) -> Any:
    """GET /v1/organization."""
    org = store.get(token_info["sub"])
    if org is None:
        return {"success": False}, 404
    return {"success": True, "data": org}


def patch_organization(body: dict[str, Any], token_info: dict[str, Any]) -> Any:
    """PATCH /v1/organization: the body was validated by Connexion against the spec."""
    org = store.patch(token_info["sub"], body)
    if org is None:
        return {"success": False}, 404
    return {"success": True, "data": org}


def put_contact_protection(organizationId: str, body: dict[str, Any]) -> Any:
    """PUT /api/organizations/{organizationId}/contact-protection-settings."""
    hours = body["contactProtectionPeriod"]
    if not store.set_contact_protection(organizationId, hours):
        return {"error": "Organization not found"}, 404
    return {
        "success": True,
        "message": "Contact protection settings updated",
        "data": {"contactProtectionPeriod": hours},
    }
