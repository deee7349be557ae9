"""Developer API (/v1): missed calls, and whether to text the caller the auto-message."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from handlers.errors import NotFound, ValidationFailed
from handlers.rules import phone_numbers, send_decisions, sms_encoding
from handlers.rules.missed_call_decision import MissedCallDecision, decide_missed_call
from handlers.services import Services
from handlers.v1.inbound_messages import IdempotencyConflictError
from handlers.v1.instants import parse_at, rfc3339
from storage import IdempotencyConflict, NotFoundError
from storage.records import to_json


def fingerprint(body: dict[str, Any], at: datetime | None) -> str:
    """What makes a retry the same call: from, the names (null and absent alike) and the
    instant ``at`` names (``Z`` and ``+00:00`` alike; None when it was left out)."""
    payload = to_json(
        {
            "from": body["from"],
            "contact_name": body.get("contact_name"),
            "agent_name": body.get("agent_name"),
            "at": at.isoformat() if at is not None else None,
        }
    )
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


#: A MissedCallResult's fields in the published order (a replayed answer is stored sorted).
FIELDS = ("id", "action", "reason", "text", "encoding", "segments", "next_allowed_at")


def answer(call_id: str, decision: MissedCallDecision) -> dict[str, Any]:
    """The answer's ``data``: the action, why, and the text with how it goes on the air."""
    size = sms_encoding.measure(decision.text) if decision.text else None
    return {
        "id": call_id,
        "action": decision.action,
        "reason": decision.reason,
        "text": decision.text,
        "encoding": size.encoding if size else None,
        "segments": size.segments if size else None,
        "next_allowed_at": rfc3339(decision.next_allowed_at),
    }


async def receive(
    services: Services, token_info: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """POST /v1/missed_calls."""
    details = {}
    if problem := phone_numbers.problem(body["from"]):
        details["from"] = problem
    at, problem = parse_at(body.get("at"))
    if problem is not None:
        details["at"] = problem
    if details:
        raise ValidationFailed(details=details)
    zones = send_decisions.recipient_zones(body["from"])

    def decide(
        org: dict[str, Any], opted_out: bool, last_sent_at: datetime | None
    ) -> tuple[dict[str, Any], datetime | None]:
        decision = decide_missed_call(
            org=org,
            opted_out=opted_out,
            last_sent_at=last_sent_at,
            zones=zones,
            at=at,
            contact_name=body.get("contact_name"),
            agent_name=body.get("agent_name"),
        )
        # Only a call that texts the caller counts for contact protection, at the moment the
        # text goes out: now for send, the end of quiet hours for hold (so a night of calls
        # is one held text, not one each at the same moment).
        counted = {"send": at, "hold": decision.next_allowed_at}.get(decision.action)
        return answer(body["id"], decision), counted

    try:
        data, _replayed = await services.store.receive_missed_call(
            token_info["organization_id"],
            call_id=body["id"],
            phone_number=body["from"],
            fingerprint=fingerprint(body, at if "at" in body else None),
            decide=decide,
        )
    except IdempotencyConflict:
        raise IdempotencyConflictError(
            "this id was already used for a different call",
            details={
                "id": f"{body['id']} was already used with a different from, contact_name,"
                " agent_name or at"
            },
        ) from None
    except NotFoundError:
        raise NotFound("organization not found") from None
    return {"success": True, "data": {field: data[field] for field in FIELDS}}
