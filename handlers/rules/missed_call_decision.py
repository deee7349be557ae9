"""Whether to text a missed caller, and what (PRODUCT.md "Missed calls"), with no I/O.

The caller looks up the organization, the ledger, the caller's zones and the last auto-message
to this number; the checks run in the contract's order and the first that applies answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from handlers.rules.missed_call import render_auto_message
from handlers.rules.send_decisions import decide

Action = Literal["send", "hold", "skip"]


@dataclass(frozen=True, slots=True)
class MissedCallDecision:
    """The answer to one missed call; ``text`` for send and hold only."""

    action: Action
    reason: str | None = None
    text: str | None = None
    #: For hold, and for a skip because of quiet hours: when the caller may be texted.
    next_allowed_at: datetime | None = None


def recently_messaged(last_sent_at: datetime | None, at: datetime, period_hours: int) -> bool:
    """True when contact protection forbids another auto-message at ``at`` (0 hours: never).

    ``last_sent_at`` is when the last auto-message to this number goes out: the ``at`` of a
    call answered send, the ``next_allowed_at`` of one answered hold. One at or after ``at``
    (a held text not yet due, or calls reported out of order) counts as recent: the caller is
    texted within the period either way.
    """
    if period_hours == 0 or last_sent_at is None:
        return False
    return at - last_sent_at < timedelta(hours=period_hours)


def decide_missed_call(
    *,
    org: Mapping[str, Any],
    opted_out: bool,
    last_sent_at: datetime | None,
    zones: Sequence[str],
    at: datetime,
    contact_name: str | None = None,
    agent_name: str | None = None,
) -> MissedCallDecision:
    """Send, hold or skip the auto-message to a caller who was missed at ``at``.

    ``org`` is the organization record (snake_case fields); ``zones`` are the caller's number's
    zones (``send_decisions.recipient_zones``). A message that renders to nothing (blank) counts
    as no message.
    """
    message = org["missed_call_message"]
    text = (
        render_auto_message(
            message, contact_name=contact_name, agent_name=agent_name, organization_name=org["name"]
        )
        if message
        else ""
    )
    if not org["missed_call_auto_message_enabled"] or not text:
        return MissedCallDecision("skip", "disabled")
    if opted_out:
        return MissedCallDecision("skip", "opted_out")
    if recently_messaged(last_sent_at, at, org["contact_protection_period"]):
        return MissedCallDecision("skip", "recently_messaged")
    send = decide(opted_out=False, quiet_hours_settings=org["quiet_hours"], zones=zones, at=at)
    if send.decision == "send":
        return MissedCallDecision("send", text=text)
    if send.decision == "hold":
        return MissedCallDecision("hold", text=text, next_allowed_at=send.next_allowed_at)
    # Blocked: quiet hours in reject mode (with next_allowed_at), or the zone unknown/ambiguous.
    return MissedCallDecision("skip", send.reasons[0], next_allowed_at=send.next_allowed_at)
