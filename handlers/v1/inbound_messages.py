"""Developer API (/v1): inbound messages, and what STOP, START and HELP do to the ledger."""

from __future__ import annotations

import hashlib
from typing import Any

from handlers.errors import ApiError, NotFound, ValidationFailed
from handlers.http import request_context
from handlers.rules import phone_numbers, replies
from handlers.rules.keywords import Match, classify
from handlers.services import Services
from handlers.v1.opt_outs import api_key_actor
from storage import IdempotencyConflict, NotFoundError
from storage.records import to_json


class IdempotencyConflictError(ApiError):
    """The message id was used before for another message; nothing changed."""

    status, code = 409, "IDEMPOTENCY_CONFLICT"
    message = "this id was already used for a different message"


def fingerprint(body: dict[str, Any]) -> str:
    """What makes a retry the same message: its from, to and body (SHA-256 of their JSON)."""
    payload = to_json({"from": body["from"], "to": body["to"], "body": body["body"]})
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def answer(body: dict[str, Any], match: Match, outcome: replies.Outcome) -> dict[str, Any]:
    """The answer's ``data``: the message, its keyword and what it did."""
    return {
        "id": body["id"],
        "from": body["from"],
        "keyword": match.keyword,
        "category": match.category,
        "action": outcome.action,
        "reply": replies.reply_body(outcome.reply),
    }


def _conflict(message_id: str) -> IdempotencyConflictError:
    return IdempotencyConflictError(
        details={"id": f"{message_id} was already used with a different from, to or body"}
    )


async def receive(
    services: Services, token_info: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """POST /v1/inbound_messages."""
    try:
        phone_numbers.check({"from": body["from"], "to": body["to"]})
    except phone_numbers.InvalidPhoneNumber as exc:
        raise ValidationFailed(details=exc.details) from None
    org_id = token_info["organization_id"]
    match = classify(body["body"])
    try:
        if match.category is None:
            # Nothing to record; an id first used for a keyword message still gets its answer
            # (or a 409 when this is another message).
            first = await services.store.replay(org_id, "inbound", body["id"], fingerprint(body))
            return {"success": True, "data": first or answer(body, match, replies.NOTHING)}

        def decide(
            org: dict[str, Any], entry: dict[str, Any] | None
        ) -> tuple[dict[str, Any], str | None]:
            source = entry["source"] if entry is not None else None
            outcome = replies.decide(match.category, source, org["auto_replies"], org["name"])
            change = None if outcome.ledger == "none" else outcome.ledger
            return answer(body, match, outcome), change

        data, _replayed = await services.store.receive_inbound(
            org_id,
            message_id=body["id"],
            phone_number=body["from"],
            fingerprint=fingerprint(body),
            decide=decide,
            actor=api_key_actor(token_info),
            request_id=request_context.request_id(),
        )
    except IdempotencyConflict:
        raise _conflict(body["id"]) from None
    except NotFoundError:
        raise NotFound("organization not found") from None
    return {"success": True, "data": data}
