"""The recipes of tests/test_spec_docs_replay.py: for each documented response, the
credential, request and organization state that produce it, and the documented responses no
request from outside can produce."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

NO_BODY = object()
BIG = b'{"name": "' + b"x" * (65 * 1024) + b'"}'


@dataclass(frozen=True)
class Recipe:
    """How to produce one documented response."""

    auth: str | None = "key"  # a credential name from the state; None sends no Authorization
    org: str = "main"  # which organization of the state the request acts on
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""
    method: str | None = None  # overrides the operation's method (for 405)
    path_org: str | None = None  # overrides the organizationId in the path
    setup: Any = NO_BODY  # a body sent first, same operation, same credential
    stall: bool = False  # declare a body, send one byte of it, then stop (408 after 10 s)
    exact: bool = False
    phone: str = "+14155550140"  # the {phone_number} in the path (sent with its + as %2B)


CP = "/organizations/{organizationId}/contact-protection-settings"
MC = "/organizations/{organizationId}/missed-call-message"
PREVIEW = MC + "/preview"
MC_EXAMPLE = {
    "missedCallMessage": "Hi {{contactName}}, sorry we missed your call. "
    "We'll get back to you shortly.",
    "missedCallAutoMessageEnabled": True,
}

SD = "/send_decisions"
MCALL = "/missed_calls"
#: 23:00 in New York (December).
LATE = "2026-12-03T04:00:00Z"
SD_LATE = {
    "at": LATE,
    "recipients": [
        {"phone_number": "+12125550123"},
        {"phone_number": "+13105550123"},
        {"phone_number": "+14155550123", "time_zone": "Europe/London"},
    ],
}
#: New York, opted out (in the "rejecting" organization's ledger), no known zone.
REJECTED_NUMBERS = ["+12125550123", "+12125550199", "+441632960123"]
MCALL_NAMED = {
    "id": "CA0a1b2c3d4e5f",
    "from": "+12125550123",
    "contact_name": "Dana",
    "agent_name": "Sam",
    "at": "2026-12-02T20:15:00Z",
}
MCALL_TEMPLATE = (
    "Hi {{contactName}}, sorry we missed your call. {{agentName}} from {{organizationName}}"
    " will call you back shortly."
)

#: (spec, method, path, status, example name) -> recipe; "*" matches any path or method.
# The ledger of the main organization (see state): a contact who texted STOP, two numbers
# opted out by hand (one removed by DELETE, one by the contact's START), a STOP's message id.
BY_KEYWORD, BY_API, TO_OPT_IN = "+14155550141", "+14155550142", "+14155550143"
STOPPED_ID = "SMreplay0001"
OO = "/opt_outs/{phone_number}"
INBOUND = "/inbound_messages"


def inbound(sender: str, body: str, message_id: str) -> dict[str, str]:
    """An inbound message to the organization's number."""
    return {"id": message_id, "from": sender, "to": "+14155550100", "body": body}


RECIPES: dict[tuple[str, str, str, str, str], Recipe] = {
    # developer API
    # a never-changed organization: every default, nulls included
    ("v1", "get", "/organization", "200", "organization"): Recipe(org="blank"),
    ("v1", "patch", "/organization", "200", "organization"): Recipe(body={"name": "Acme Health"}),
    ("v1", "get", "/audit_events", "200", "example"): Recipe(query="?limit=1"),
    ("v1", "*", "*", "401", "example"): Recipe(auth=None, exact=True),
    ("v1", "get", "/organization", "403", "example"): Recipe(auth="audit_key"),
    ("v1", "patch", "/organization", "403", "example"): Recipe(auth="read_key", exact=True),
    ("v1", "get", "/audit_events", "403", "example"): Recipe(auth="read_key"),
    ("v1", "*", "*", "413", "example"): Recipe(raw=BIG, exact=True),
    ("v1", "*", "*", "405", "example"): Recipe(method="DELETE", exact=True),
    ("v1", "*", "*", "408", "example"): Recipe(stall=True, exact=True),
    ("v1", "get", "/organization", "422", "example"): Recipe(query="?limit=0"),
    ("v1", "get", "/audit_events", "422", "example"): Recipe(query="?limit=0", exact=True),
    ("v1", "patch", "/organization", "400", "example"): Recipe(raw=b'{"name": "x" "y"}'),
    ("v1", "patch", "/organization", "412", "example"): Recipe(
        body={"name": "Acme"}, headers=(("If-Match", '"999"'),)
    ),
    ("v1", "patch", "/organization", "415", "example"): Recipe(
        raw=b"name=x", content_type="text/plain", exact=True
    ),
    ("v1", "patch", "/organization", "422", "validationFailed"): Recipe(
        body={"message_retention_days": 10, "plan": "pro", "quiet_hours": {"start": "25:00"}},
        exact=True,
    ),
    ("v1", "patch", "/organization", "422", "attestationRequired"): Recipe(
        org="personal", body={"auto_replies": {"enabled": False}}, exact=True
    ),
    ("v1", "patch", "/organization", "422", "resellerNotEligible"): Recipe(
        org="personal", body={"is_reseller": True}, exact=True
    ),
    ("v1", "patch", "/organization", "422", "resellerHasBrands"): Recipe(
        org="reseller", body={"is_reseller": False}, exact=True
    ),
    # the opt-out ledger and inbound messages
    ("v1", "get", "/opt_outs", "200", "example"): Recipe(),
    ("v1", "get", "/opt_outs", "403", "example"): Recipe(auth="read_key"),
    ("v1", "get", "/opt_outs", "422", "example"): Recipe(query="?cursor=bm90LWEtY3Vyc29y"),
    ("v1", "get", OO, "200", "byKeyword"): Recipe(phone=BY_KEYWORD),
    ("v1", "get", OO, "403", "example"): Recipe(auth="read_key"),
    ("v1", "get", OO, "422", "impossible"): Recipe(phone="+1415555"),
    ("v1", "get", OO, "422", "notE164"): Recipe(phone="14155550123"),
    ("v1", "put", OO, "200", "byKeyword"): Recipe(phone=BY_KEYWORD, body={}),
    ("v1", "put", OO, "201", "byApi"): Recipe(
        phone="+14155550144", body={"reason": "Asked by phone not to be texted again."}
    ),
    ("v1", "put", OO, "400", "example"): Recipe(raw=b'{"reason": "x" "y"}'),
    ("v1", "put", OO, "403", "example"): Recipe(auth="read_key", body={}),
    ("v1", "put", OO, "415", "example"): Recipe(raw=b"reason=x", content_type="text/plain"),
    ("v1", "put", OO, "422", "notCanonical"): Recipe(phone="+4402071234567", body={}),
    ("v1", "put", OO, "422", "blankReason"): Recipe(body={"reason": "   "}),
    ("v1", "delete", OO, "200", "byApi"): Recipe(phone=BY_API),
    ("v1", "delete", OO, "403", "example"): Recipe(auth="read_key"),
    ("v1", "delete", OO, "409", "example"): Recipe(phone=BY_KEYWORD),
    ("v1", "delete", OO, "422", "impossible"): Recipe(phone="+1415555"),
    ("v1", "delete", OO, "422", "notE164"): Recipe(phone="14155550123"),
    # DELETE is one of this path's methods: PATCH is not.
    **{
        ("v1", m, OO, "405", "example"): Recipe(method="PATCH", exact=True)
        for m in ("get", "put", "delete")
    },
    ("v1", "post", INBOUND, "200", "optedOut"): Recipe(
        body=inbound("+14155550145", "Stop. Thank you", "SMreplay0002")
    ),
    ("v1", "post", INBOUND, "200", "alreadyOptedOut"): Recipe(
        body=inbound(BY_KEYWORD, "STOP", "SMreplay0003")
    ),
    ("v1", "post", INBOUND, "200", "optedIn"): Recipe(
        body=inbound(TO_OPT_IN, "START", "SMreplay0004")
    ),
    ("v1", "post", INBOUND, "200", "help"): Recipe(body=inbound(BY_KEYWORD, "HELP", "SMreplay05")),
    ("v1", "post", INBOUND, "200", "autoRepliesOff"): Recipe(
        org="silent", body=inbound("+14155550146", "STOPALL", "SMreplay0006")
    ),
    ("v1", "post", INBOUND, "200", "conversation"): Recipe(
        body=inbound("+14155550147", "Cancel my 3pm, please", "SMreplay0007")
    ),
    ("v1", "post", INBOUND, "409", "example"): Recipe(
        body=inbound(BY_KEYWORD, "START", STOPPED_ID)
    ),
    ("v1", "post", INBOUND, "422", "example"): Recipe(
        body=inbound("+1415555", "STOP", "SMreplay0008")
    ),
    # send decisions and missed calls (the "queued" and "rejecting" organizations: see state)
    ("v1", "post", SD, "200", "queued"): Recipe(org="queued", body=SD_LATE, exact=True),
    ("v1", "post", SD, "200", "rejected"): Recipe(
        org="rejecting",
        body={"at": LATE, "recipients": [{"phone_number": n} for n in REJECTED_NUMBERS]},
        exact=True,
    ),
    ("v1", "post", SD, "200", "quietHoursOff"): Recipe(
        org="personal", body={"recipients": [{"phone_number": "+14155550123"}]}, exact=True
    ),
    ("v1", "post", SD, "422", "badRecipients"): Recipe(
        body={
            "recipients": [
                {"phone_number": "+1415555"},
                {"phone_number": "+14155550123", "time_zone": "Mars/Olympus"},
            ]
        },
        exact=True,
    ),
    ("v1", "post", SD, "422", "tooMany"): Recipe(
        body={"recipients": [{"phone_number": "+14155550123"}] * 101}, exact=True
    ),
    ("v1", "post", MCALL, "200", "send"): Recipe(org="queued", body=MCALL_NAMED, exact=True),
    ("v1", "post", MCALL, "200", "hold"): Recipe(
        org="queued",
        body={"id": "CA0a1b2c3d4e61", "from": "+12125550124", "at": LATE},
        exact=True,
    ),
    ("v1", "post", MCALL, "200", "recentlyMessaged"): Recipe(
        org="queued",
        setup={"id": "CA-replay-first", "from": "+12125550125", "at": "2026-12-02T20:15:00Z"},
        body={"id": "CA0a1b2c3d4e62", "from": "+12125550125", "at": "2026-12-02T21:15:00Z"},
        exact=True,
    ),
    ("v1", "post", MCALL, "200", "disabled"): Recipe(
        org="personal", body={"id": "CA0a1b2c3d4e63", "from": "+12125550123"}, exact=True
    ),
    ("v1", "post", MCALL, "409", "example"): Recipe(
        org="queued",
        setup=MCALL_NAMED,
        body={**MCALL_NAMED, "contact_name": "Someone else"},
        exact=True,
    ),
    ("v1", "post", MCALL, "422", "example"): Recipe(
        body={"id": "CA1", "from": "+4402071234567", "at": "1800-01-01T00:00:00Z"}, exact=True
    ),
    ("v1", "post", "*", "400", "example"): Recipe(raw=b'{"id": "x" "y"}'),
    ("v1", "post", "*", "403", "example"): Recipe(auth="read_key"),
    ("v1", "post", "*", "415", "example"): Recipe(raw=b"id=x", content_type="text/plain"),
    # dashboard API
    ("dashboard", "get", CP, "200", "example"): Recipe(
        auth="admin", setup={"contactProtectionPeriod": 48}, exact=True
    ),
    ("dashboard", "put", CP, "200", "example"): Recipe(
        auth="admin", body={"contactProtectionPeriod": 48}, exact=True
    ),
    ("dashboard", "get", MC, "200", "example"): Recipe(auth="admin", setup=MC_EXAMPLE, exact=True),
    ("dashboard", "put", MC, "200", "example"): Recipe(auth="admin", body=MC_EXAMPLE, exact=True),
    ("dashboard", "get", "*", "400", "example"): Recipe(
        auth="superadmin", path_org="x" * 101, exact=True
    ),
    ("dashboard", "*", "*", "401", "example"): Recipe(auth=None),
    ("dashboard", "*", "*", "403", "example"): Recipe(auth="other_admin"),
    ("dashboard", "put", "*", "403", "example"): Recipe(auth="user", exact=True),
    ("dashboard", "*", "*", "404", "example"): Recipe(
        auth="superadmin", path_org=str(uuid.UUID(int=7)), exact=True
    ),
    ("dashboard", "*", "*", "405", "example"): Recipe(auth="admin", method="DELETE", exact=True),
    ("dashboard", "*", "*", "413", "example"): Recipe(auth="admin", raw=BIG, exact=True),
    ("dashboard", "*", "*", "408", "example"): Recipe(auth="admin", stall=True, exact=True),
    ("dashboard", "*", "*", "415", "example"): Recipe(
        auth="admin", raw=b"x", content_type="text/plain", exact=True
    ),
    ("dashboard", "put", CP, "400", "outOfRange"): Recipe(
        auth="admin", body={"contactProtectionPeriod": 721}, exact=True
    ),
    ("dashboard", "put", CP, "400", "invalidJson"): Recipe(
        auth="admin", raw=b"not json", exact=True
    ),
    ("dashboard", "put", MC, "400", "unknownPlaceholder"): Recipe(
        auth="admin", body={"missedCallMessage": "Hi {{customerName}}"}, exact=True
    ),
    ("dashboard", "put", MC, "400", "enableWithoutMessage"): Recipe(
        auth="superadmin", org="blank", body={"missedCallAutoMessageEnabled": True}, exact=True
    ),
    ("dashboard", "post", PREVIEW, "200", "rendered"): Recipe(
        auth="admin",
        body={
            "missedCallMessage": "Hi {{contactName}}, sorry we missed your call."
            " {{agentName}} will call you back.",
            "contactName": "Dana",
        },
        exact=True,
    ),
    ("dashboard", "post", PREVIEW, "200", "unknownToken"): Recipe(
        auth="admin",
        body={"missedCallMessage": "Hi {{customerName}}, sorry we missed your call."},
        exact=True,
    ),
    ("dashboard", "post", PREVIEW, "200", "noMessage"): Recipe(
        auth="superadmin", org="blank", body={}, exact=True
    ),
    ("dashboard", "post", PREVIEW, "400", "example"): Recipe(
        auth="admin", body={"missedCallMessage": "x" * 501}, exact=True
    ),
    ("dashboard", "put", MC, "400", "tooLong"): Recipe(
        auth="admin", body={"missedCallMessage": "x" * 501}, exact=True
    ),
}

#: Documented responses no request from outside can produce, and why.
UNREACHABLE = {
    ("v1", "*", "*", "404"): "the key's organization was deleted; nothing deletes organizations",
    ("v1", "*", "*", "500"): "an unexpected server fault",
    ("dashboard", "*", "*", "500"): "an unexpected server fault",
    # Reproduced in process instead, with the write lock held by another process:
    # tests/test_app.py::test_a_write_that_cannot_start_is_503_with_retry_after.
    ("v1", "*", "*", "503"): "a database fault (locked by another writer, full or gone)",
    ("dashboard", "*", "*", "503"): "a database fault (locked by another writer, full or gone)",
    # Reproduced in process instead (tests/test_rate_limits.py): here the server runs without
    # the failed-authentication limit, so the 401 recipes cannot trip it for later ones.
    ("v1", "*", "*", "429"): "past a rate limit",
    ("dashboard", "*", "*", "429"): "past a rate limit",
}
