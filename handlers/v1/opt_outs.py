"""Developer API (/v1): the organization's opt-out ledger, read and changed by hand."""

from __future__ import annotations

from typing import Any

from handlers.errors import ApiError, NotFound, ValidationFailed
from handlers.http import request_context
from handlers.rules import phone_numbers
from handlers.services import Services
from handlers.v1.cursors import Cursor
from storage import NotFoundError

CURSOR = Cursor("oo1:")


class OptedOutByContact(ApiError):
    """Only the contact removes an entry they made by keyword (by texting START)."""

    status, code = 409, "OPTED_OUT_BY_CONTACT"
    message = (
        "the contact opted out by texting a keyword; only the contact can opt back in,"
        " by texting START"
    )


def checked_number(phone_number: str, field: str = "phone_number") -> str:
    """The path's number, or a 422 naming ``field`` when it is not a possible E.164 number."""
    number = phone_numbers.from_path(phone_number)
    problem = phone_numbers.problem(number)
    if problem is not None:
        raise ValidationFailed(details={field: problem})
    return number


def api_key_actor(token_info: dict[str, Any]) -> dict[str, Any]:
    """The audit actor of a request made with an API key."""
    return {"type": "api_key", "id": token_info["key_id"], "role": None}


def refuse_keyword_entries(entry: dict[str, Any]) -> None:
    """An entry the contact made by keyword stays until the contact texts START."""
    if entry["source"] == "keyword":
        raise OptedOutByContact(
            details={"phone_number": f"opted out by keyword {entry['keyword']}"}
        )


async def list_opt_outs(
    services: Services, token_info: dict[str, Any], limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """GET /v1/opt_outs: newest first, cursor-paged."""
    before = CURSOR.decode(cursor) if cursor is not None else None
    entries, next_seq = await services.store.list_opt_outs(
        token_info["organization_id"], limit=limit, before_seq=before
    )
    return CURSOR.page(entries, next_seq)


async def get_opt_out(
    services: Services, token_info: dict[str, Any], phone_number: str
) -> dict[str, Any]:
    """GET /v1/opt_outs/{phone_number}."""
    number = checked_number(phone_number)
    entry = await services.store.get_opt_out(token_info["organization_id"], number)
    if entry is None:
        raise NotFound("the number is not opted out", details={"phone_number": number})
    return {"success": True, "data": entry}


async def put_opt_out(
    services: Services,
    token_info: dict[str, Any],
    phone_number: str,
    body: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """PUT /v1/opt_outs/{phone_number}: 201 with a new entry, 200 with the existing one."""
    number = checked_number(phone_number)
    try:
        entry, created = await services.store.put_opt_out(
            token_info["organization_id"],
            number,
            reason=(body or {}).get("reason"),
            actor=api_key_actor(token_info),
            surface="v1",
            request_id=request_context.request_id(),
        )
    except NotFoundError:
        raise NotFound("organization not found") from None
    return {"success": True, "data": entry}, 201 if created else 200


async def delete_opt_out(
    services: Services, token_info: dict[str, Any], phone_number: str
) -> dict[str, Any]:
    """DELETE /v1/opt_outs/{phone_number}: the removed entry; 409 for a keyword entry."""
    number = checked_number(phone_number)
    try:
        entry = await services.store.delete_opt_out(
            token_info["organization_id"],
            number,
            check=refuse_keyword_entries,
            actor=api_key_actor(token_info),
            surface="v1",
            request_id=request_context.request_id(),
        )
    except NotFoundError:
        raise NotFound("the number is not opted out", details={"phone_number": number}) from None
    return {"success": True, "data": entry}
