"""The pure send decision (PRODUCT.md "Send decisions", rules 1-6), tested without the app."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.rules.quiet_hours import UnknownTimeZone
from handlers.rules.send_decisions import Decision, decide, recipient_zones

NY = ("America/New_York",)
#: 23:00 EST on 2027-01-14; quiet hours 21:00-08:00 end at 08:00 EST, 13:00Z.
NIGHT = datetime(2027, 1, 15, 4, tzinfo=UTC)
#: 13:00 EST; quiet hours begin at 21:00 EST, 02:00Z the next day.
AFTERNOON = datetime(2027, 1, 15, 18, tzinfo=UTC)
EIGHT_AM = datetime(2027, 1, 15, 13, tzinfo=UTC)
NINE_PM = datetime(2027, 1, 16, 2, tzinfo=UTC)


def settings(enabled: bool = True, mode: str = "queue", start: str = "21:00", end: str = "08:00"):
    """An organization's quiet_hours block."""
    return {"enabled": enabled, "start": start, "end": end, "mode": mode}


@pytest.mark.parametrize(
    ("opted_out", "block", "zones", "at", "expected"),
    [
        # 1. Opted out: the ledger decides, whatever the zone or the hour.
        (True, settings(), NY, NIGHT, Decision("block", ("opted_out",), ())),
        (True, settings(enabled=False), (), AFTERNOON, Decision("block", ("opted_out",), ())),
        # 2. Quiet hours off: send, no zone needed.
        (False, settings(enabled=False), NY, NIGHT, Decision("send", (), ())),
        (False, settings(enabled=False), (), NIGHT, Decision("send", (), ())),
        # 3. No zone known: fail closed.
        (False, settings(), (), AFTERNOON, Decision("block", ("time_zone_unknown",), ())),
        (
            False,
            settings(),
            ("Etc/Unknown",),
            AFTERNOON,
            Decision("block", ("time_zone_unknown",), ()),
        ),
        # 5. Quiet: hold (queue) or block (reject), with next_allowed_at.
        (
            False,
            settings(mode="queue"),
            NY,
            NIGHT,
            Decision("hold", ("quiet_hours",), NY, next_allowed_at=EIGHT_AM),
        ),
        (
            False,
            settings(mode="reject"),
            NY,
            NIGHT,
            Decision("block", ("quiet_hours",), NY, next_allowed_at=EIGHT_AM),
        ),
        # 5. Not quiet: send, with send_before.
        (False, settings(), NY, AFTERNOON, Decision("send", (), NY, send_before=NINE_PM)),
        (False, settings(), NY + NY, AFTERNOON, Decision("send", (), NY, send_before=NINE_PM)),
    ],
)
def test_decide(opted_out, block, zones, at, expected):
    assert decide(opted_out=opted_out, quiet_hours_settings=block, zones=zones, at=at) == expected


def test_quiet_in_too_many_zones_is_ambiguous():
    """6. A toll-free number's 42 zones leave no open hour with quiet hours 20:00-10:00."""
    zones = recipient_zones("+18005550123")
    decision = decide(
        opted_out=False,
        quiet_hours_settings=settings(start="20:00", end="10:00"),
        zones=zones,
        at=NIGHT,
    )
    assert decision == Decision("block", ("time_zone_ambiguous",), zones)


def test_a_number_in_two_zones_waits_for_both():
    """Idaho's 208: 07:30 PST is still quiet after 08:30 MST; allowed at 08:00 PST."""
    zones = recipient_zones("+12085550123")
    at = datetime(2027, 1, 15, 15, 30, tzinfo=UTC)
    decision = decide(opted_out=False, quiet_hours_settings=settings(), zones=zones, at=at)
    assert decision.decision == "hold"
    assert decision.time_zones == ("America/Boise", "America/Los_Angeles")
    assert decision.next_allowed_at == datetime(2027, 1, 15, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "time_zone", "zones"),
    [
        ("+12125550123", None, ("America/New_York",)),
        ("+12125550123", "Europe/Paris", ("Europe/Paris",)),  # the caller knows better
        ("+15555555555", None, ()),  # invalid number: Etc/Unknown
        ("+15555555555", "America/Chicago", ("America/Chicago",)),
    ],
)
def test_recipient_zones(number, time_zone, zones):
    assert recipient_zones(number, time_zone) == zones


def test_an_unknown_zone_name_is_an_error_not_a_decision():
    """The HTTP layer answers 422 for it; the rule never guesses."""
    with pytest.raises(UnknownTimeZone):
        decide(opted_out=False, quiet_hours_settings=settings(), zones=("Mars/Base",), at=NIGHT)
