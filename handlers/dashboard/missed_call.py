"""Dashboard API (/api): an organization's missed-call auto-message."""

from __future__ import annotations

from typing import Any

from handlers.dashboard.access import change_org, read_org, read_org_as_writer
from handlers.errors import BadRequest
from handlers.rules import missed_call, sms_encoding
from handlers.services import Services

Response = tuple[dict[str, Any], int]
PLACEHOLDER_LIST = ", ".join("{{" + name + "}}" for name in missed_call.PLACEHOLDERS)


def _view(org: dict[str, Any]) -> dict[str, Any]:
    return {
        "missedCallMessage": org["missed_call_message"],
        "missedCallAutoMessageEnabled": org["missed_call_auto_message_enabled"],
    }


async def get_missed_call_message(
    services: Services, organizationId: str, token_info: dict[str, Any]
) -> Response:
    """Read the organization's missed-call auto-message configuration."""
    return _view(await read_org(services, organizationId, token_info)), 200


async def put_missed_call_message(
    services: Services, organizationId: str, body: dict[str, Any], token_info: dict[str, Any]
) -> Response:
    """Partially update the missed-call message and/or its enabled flag."""
    has_message = "missedCallMessage" in body
    has_enabled = "missedCallAutoMessageEnabled" in body
    if not (has_message or has_enabled):
        # Like v1's empty PATCH: the current settings, no change and no audit event.
        return _view(await read_org_as_writer(services, organizationId, token_info)), 200
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

    return _view(await change_org(services, organizationId, token_info, mutate)), 200


def _enabled_without_message() -> BadRequest:
    return BadRequest(
        "cannot enable without a message",
        dashboard_message="Cannot enable the missed call auto-message without a message",
        details=(
            "missedCallAutoMessageEnabled cannot be true while missedCallMessage is "
            "null; set missedCallMessage in the same request or first"
        ),
    )


async def preview_missed_call_message(
    services: Services, organizationId: str, body: dict[str, Any], token_info: dict[str, Any]
) -> Response:
    """Render a missed-call message (the given one, else the stored one); nothing changes."""
    org = await read_org(services, organizationId, token_info)
    message = body.get("missedCallMessage", org["missed_call_message"]) or ""
    text = missed_call.render_auto_message(
        message,
        contact_name=body.get("contactName"),
        agent_name=body.get("agentName"),
        organization_name=org["name"],
    )
    size = sms_encoding.measure(text) if text else None
    return {
        "text": text or None,
        "encoding": size.encoding if size else None,
        "segments": size.segments if size else None,
        "unknownPlaceholders": missed_call.unknown_placeholders(message),
    }, 200
