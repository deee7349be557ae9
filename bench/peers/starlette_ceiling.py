"""Peer: the ceiling. A bare Starlette app answering all three routes with JSON from memory.

No auth, no validation, no SQLite, no body read: what the server stack (uvicorn + Starlette) costs
on its own. Serve it with ``uvicorn --app-dir bench/peers starlette_ceiling:app``.
"""

from __future__ import annotations

import json

from common import AUTO_REPLIES, QUIET_HOURS, REGISTRATION
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ORGANIZATION = {
    "id": "01a2089f-557e-7a50-a99c-99a7fb29bf8c",
    "name": "Bench",
    "billing_email": None,
    "plan": "payg",
    "throughput_tier": 1,
    "tenant_type": "commercial",
    "message_retention_days": 90,
    "mms_retention_days": 30,
    "is_reseller": False,
    "quiet_hours": QUIET_HOURS,
    "auto_replies": AUTO_REPLIES,
    "registration_status": REGISTRATION,
    "created_at": "2026-01-01T00:00:00.000Z",
    "updated_at": "2026-01-01T00:00:00.000Z",
}
ORG_BODY = json.dumps({"success": True, "data": ORGANIZATION}).encode()
PUT_BODY = json.dumps(
    {
        "success": True,
        "message": "Contact protection settings updated",
        "data": {"contactProtectionPeriod": 48},
    }
).encode()


async def organization(request: Request) -> Response:
    """GET and PATCH /v1/organization: the organization JSON, prebuilt."""
    return Response(ORG_BODY, media_type="application/json")


async def contact_protection(request: Request) -> Response:
    """PUT /api/organizations/{organizationId}/contact-protection-settings: a constant."""
    return Response(PUT_BODY, media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/organization", organization, methods=["GET", "PATCH"]),
        Route(
            "/api/organizations/{organizationId}/contact-protection-settings",
            contact_protection,
            methods=["PUT"],
        ),
    ]
)
