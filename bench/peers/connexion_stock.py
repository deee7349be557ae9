"""Peer: a minimal stock Connexion 3 FlaskApp serving the three benchmarked operations.

Nothing is tuned: Connexion's own security handlers and request-body validator, Flask behind its
WSGI bridge, handlers that do the SQLite work in ``common.Store``. Serve it with
``uvicorn --app-dir bench/peers connexion_stock:app`` and ``BENCH_PEER_DB`` set to a database
made by ``common.seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import Store
from connexion import FlaskApp

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


app = FlaskApp(__name__, specification_dir=Path(__file__).parent)
# spec.yaml is a Jinja2 template shared with the AsyncApp peer: its handlers live in this module.
app.add_api("spec.yaml", arguments={"module": "connexion_stock"})
