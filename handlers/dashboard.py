"""Dashboard API operations (/api): contact protection and missed-call settings.

Security (401) and the body schema (400) have run before these; here come the rules JSON
Schema cannot express, then the role check (403), then the lookup (404), as the spec orders them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers import missed_call
from handlers.context import request_context
from handlers.errors import BadRequest, Forbidden, NotFound
from storage import NotFoundError

WRITE_ROLES = ("ADMIN",)
PLACEHOLDER_LIST = ", ".join("{{" + name + "}}" for name in missed_call.PLACEHOLDERS)


def get_contact_protection_settings(organizationId: str, token_info: dict) -> tuple[dict, int]:
    """Read the organization's contact protection period."""
    org = _read(organizationId, token_info)
    return {"success": True, "data": _contact_protection(org)}, 200


def put_contact_protection_settings(organizationId: str, token_info: dict) -> tuple[dict, int]:
    """Set the contact protection period (the schema has already checked it is 0-720)."""
    period = request_context()["body"]["contactProtectionPeriod"]

    def mutate(org: dict[str, Any]) -> tuple[dict[str, Any], None]:
        org["contact_protection_period"] = period
        return org, None

    org = _write(organizationId, token_info, mutate)
    return {
        "success": True,
        "message": "Contact protection settings updated",
        "data": _contact_protection(org),
    }, 200


def get_missed_call_message(organizationId: str, token_info: dict) -> tuple[dict, int]:
    """Read the organization's missed-call auto-message configuration."""
    return _missed_call(_read(organizationId, token_info)), 200


def put_missed_call_message(organizationId: str, token_info: dict) -> tuple[dict, int]:
    """Partially update the missed-call message and/or its enabled flag."""
    body = request_context()["body"]
    has_message = "missedCallMessage" in body
    has_enabled = "missedCallAutoMessageEnabled" in body
    if not (has_message or has_enabled):
        raise BadRequest(
            "nothing to update",
            dashboard_message="Nothing to update",
            details="provide missedCallMessage, missedCallAutoMessageEnabled, or both",
        )
    message = missed_call.normalize_message(body.get("missedCallMessage"))
    if message is not None and (unknown := missed_call.unknown_placeholders(message)):
        raise BadRequest(
            "unknown placeholder",
            dashboard_message="missedCallMessage contains an unknown placeholder",
            details=f"unknown placeholder {', '.join(unknown)}; allowed: {PLACEHOLDER_LIST}",
        )

    def mutate(org: dict[str, Any]) -> tuple[dict[str, Any], None]:
        # Runs in the write transaction: the rule below sees the message as committed.
        if has_message:
            org["missed_call_message"] = message
        if has_enabled:
            org["missed_call_auto_message_enabled"] = body["missedCallAutoMessageEnabled"]
        # Only turning the auto-message on needs a message (PRODUCT.md). Clearing the message
        # of an enabled auto-message is allowed: nothing is sent until a message is set again.
        if has_enabled and missed_call.enabling_without_message(
            org["missed_call_auto_message_enabled"], org["missed_call_message"]
        ):
            raise _enabled_without_message()
        return org, None

    return _missed_call(_write(organizationId, token_info, mutate)), 200


def _enabled_without_message() -> BadRequest:
    return BadRequest(
        "cannot enable without a message",
        dashboard_message="Cannot enable the missed call auto-message without a message",
        details=(
            "missedCallAutoMessageEnabled cannot be true while missedCallMessage is "
            "null; set missedCallMessage in the same request or first"
        ),
    )


def _read(org_id: str, token_info: dict) -> dict[str, Any]:
    if not (token_info["role"] == "SUPERADMIN" or token_info["organization_id"] == org_id):
        raise Forbidden(details="you are not a member of this organization")
    try:
        return request_context()["services"].store.get_org(org_id)
    except NotFoundError:
        raise _not_found() from None


def _write(
    org_id: str, token_info: dict, mutate: Callable[[dict], tuple[dict, None]]
) -> dict[str, Any]:
    role = token_info["role"]
    own = role in WRITE_ROLES and token_info["organization_id"] == org_id
    if not (role == "SUPERADMIN" or own):
        raise Forbidden(
            details="only an ADMIN of this organization or a SUPERADMIN may change its settings"
        )
    ctx = request_context()
    try:
        org, _event = ctx["services"].store.modify_org(
            org_id,
            mutate,
            actor={"type": "user", "id": token_info["sub"], "role": role},
            surface="dashboard",
            request_id=ctx["request_id"],
        )
    except NotFoundError:
        raise _not_found() from None
    return org


def _not_found() -> NotFound:
    return NotFound(
        "Organization not found",
        details="No organization exists with the provided id",
        dashboard_message="Organization not found",
    )


def _contact_protection(org: dict[str, Any]) -> dict[str, Any]:
    return {"contactProtectionPeriod": org["contact_protection_period"]}


def _missed_call(org: dict[str, Any]) -> dict[str, Any]:
    return {
        "missedCallMessage": org["missed_call_message"],
        "missedCallAutoMessageEnabled": org["missed_call_auto_message_enabled"],
    }
