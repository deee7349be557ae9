"""Peer: the three benchmarked operations in FastAPI with sync (``def``) handlers.

Pydantic models validate the bodies; the handlers run in FastAPI's thread pool and do the SQLite
work in ``common.Store``. Serve it with ``uvicorn --app-dir bench/peers fastapi_app:app`` and
``BENCH_PEER_DB`` set to a database made by ``common.seed``.
"""

from __future__ import annotations

from typing import Annotated, Any

from common import Store
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt

store = Store()
bearer = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class OrganizationPatch(BaseModel):
    """The settable fields of PATCH /v1/organization; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    billing_email: str | None = None
    message_retention_days: int | None = Field(default=None, ge=30, le=365)
    mms_retention_days: int | None = Field(default=None, ge=1, le=365)
    is_reseller: bool | None = None


class ContactProtection(BaseModel):
    """The PUT contact-protection-settings body."""

    contactProtectionPeriod: StrictInt = Field(ge=0, le=720)


def api_key_org(credentials: Credentials) -> str:
    """The organization id of the bearer API key, else 401."""
    org_id = store.org_for_key(credentials.credentials) if credentials else None
    if org_id is None:
        raise HTTPException(401, "authentication failed", {"WWW-Authenticate": "Bearer"})
    return org_id


def any_bearer(credentials: Credentials) -> str:
    """Any bearer token is accepted on /api (the peer has no JWTs); none is 401."""
    if credentials is None:
        raise HTTPException(401, "Unauthorized", {"WWW-Authenticate": "Bearer"})
    return credentials.credentials


OrgId = Annotated[str, Depends(api_key_org)]
AnyBearer = Annotated[str, Depends(any_bearer)]
app = FastAPI()


@app.get("/v1/organization")
def get_organization(org_id: OrgId) -> dict[str, Any]:
    """GET /v1/organization."""
    org = store.get(org_id)
    if org is None:
        raise HTTPException(404)
    return {"success": True, "data": org}


@app.patch("/v1/organization")
def patch_organization(body: OrganizationPatch, org_id: OrgId) -> dict[str, Any]:
    """PATCH /v1/organization: only the fields the client sent."""
    org = store.patch(org_id, body.model_dump(exclude_unset=True))
    if org is None:
        raise HTTPException(404)
    return {"success": True, "data": org}


@app.put("/api/organizations/{organizationId}/contact-protection-settings")
def put_contact_protection(
    organizationId: str,
    body: ContactProtection,
    _token: AnyBearer,
) -> dict[str, Any]:
    """PUT /api/organizations/{organizationId}/contact-protection-settings."""
    if not store.set_contact_protection(organizationId, body.contactProtectionPeriod):
        raise HTTPException(404, "Organization not found")
    return {
        "success": True,
        "message": "Contact protection settings updated",
        "data": {"contactProtectionPeriod": body.contactProtectionPeriod},
    }
