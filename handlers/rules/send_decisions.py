"""The send decision for one recipient: the opt-out ledger, then quiet hours (PRODUCT.md 1-6).

Pure: the caller looks up the ledger and the recipient's zones; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import phonenumbers

from handlers.rules import quiet_hours

Verdict = Literal["send", "hold", "block"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One recipient's answer; instants are UTC (or None)."""

    decision: Verdict
    reasons: tuple[str, ...]
    #: The zones quiet hours were evaluated in; () when they were not (opted out, quiet hours
    #: off) or none is known.
    time_zones: tuple[str, ...]
    next_allowed_at: datetime | None = None
    send_before: datetime | None = None


def recipient_zones(
    phone_number: phonenumbers.PhoneNumber | str, time_zone: str | None = None
) -> tuple[str, ...]:
    """``(time_zone,)`` when the caller gave one, else the number's zones (() when unknown)."""
    if time_zone is not None:
        return (time_zone,)
    return quiet_hours.zones_for_number(phone_number)


def decide(
    *,
    opted_out: bool,
    quiet_hours_settings: Mapping[str, Any],
    zones: Sequence[str],
    at: datetime,
) -> Decision:
    """Send, hold or block a message to one recipient at ``at``.

    ``quiet_hours_settings`` is the organization's block ``{enabled, start, end, mode}``;
    ``zones`` the recipient's (``recipient_zones``), empty or ``Etc/Unknown`` when not known.
    ``time_zones`` in the answer holds the zones the decision was made in: empty for an opted-out
    recipient (the ledger alone decides), with quiet hours off (no zone matters) and when no zone
    is known; every zone tried for ``time_zone_ambiguous``, so the caller can see why.
    """
    if opted_out:
        return Decision("block", ("opted_out",), ())
    if not quiet_hours_settings["enabled"]:
        return Decision("send", (), ())
    known = tuple(dict.fromkeys(z for z in zones if z != quiet_hours.UNKNOWN_ZONE))
    if not known:
        return Decision("block", ("time_zone_unknown",), ())
    status = quiet_hours.evaluate(
        at, known, quiet_hours_settings["start"], quiet_hours_settings["end"]
    )
    if status.ambiguous:
        return Decision("block", ("time_zone_ambiguous",), known)
    if status.quiet:
        verdict: Verdict = "hold" if quiet_hours_settings["mode"] == "queue" else "block"
        return Decision(verdict, ("quiet_hours",), known, next_allowed_at=status.next_allowed_at)
    return Decision("send", (), known, send_before=status.send_before)
