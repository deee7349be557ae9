"""Developer API (/v1): may a message go to each recipient now? The ledger, then quiet hours."""

from __future__ import annotations

from typing import Any

from handlers.errors import NotFound, ValidationFailed
from handlers.rules import phone_numbers, quiet_hours, send_decisions
from handlers.services import Services
from handlers.v1.instants import parse_at, rfc3339
from storage import NotFoundError

UNKNOWN_ZONE = "is not an IANA time zone name the server knows"


def problems(body: dict[str, Any]) -> dict[str, str]:
    """Every field of the request the schema cannot check, with what is wrong with it."""
    details: dict[str, str] = {}
    for index, recipient in enumerate(body["recipients"]):
        field = f"recipients[{index}]"
        if problem := phone_numbers.problem(recipient["phone_number"]):
            details[f"{field}.phone_number"] = problem
        zone = recipient.get("time_zone")
        if zone is not None and not quiet_hours.is_time_zone(zone):
            details[f"{field}.time_zone"] = UNKNOWN_ZONE
    if (problem := parse_at(body.get("at"))[1]) is not None:
        details["at"] = problem
    return details


def decision_body(phone_number: str, decision: send_decisions.Decision) -> dict[str, Any]:
    """One recipient's ``SendDecision``."""
    return {
        "phone_number": phone_number,
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "time_zones": list(decision.time_zones),
        "next_allowed_at": rfc3339(decision.next_allowed_at),
        "send_before": rfc3339(decision.send_before),
    }


async def decide(
    services: Services, token_info: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """POST /v1/send_decisions: one decision per recipient, in request order; writes nothing."""
    details = problems(body)
    if details:
        raise ValidationFailed(details=details)
    at, _ = parse_at(body.get("at"))
    org_id = token_info["organization_id"]
    recipients = body["recipients"]
    try:
        org = await services.store.get_org(org_id)
    except NotFoundError:
        raise NotFound("organization not found") from None
    numbers = list(dict.fromkeys(r["phone_number"] for r in recipients))
    opted_out = await services.store.opted_out(org_id, numbers)  # one query for all
    settings = org["quiet_hours"]
    data = []
    for recipient in recipients:
        number = recipient["phone_number"]
        blocked = number in opted_out
        # Zones matter only when quiet hours do; their lookup is skipped otherwise.
        zones = (
            send_decisions.recipient_zones(number, recipient.get("time_zone"))
            if settings["enabled"] and not blocked
            else ()
        )
        decision = send_decisions.decide(
            opted_out=blocked, quiet_hours_settings=settings, zones=zones, at=at
        )
        data.append(decision_body(number, decision))
    return {"success": True, "data": data}
