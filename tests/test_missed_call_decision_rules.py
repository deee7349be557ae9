"""The pure missed-call rules (PRODUCT.md "Missed calls"): the text and the decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers.rules import missed_call
from handlers.rules.missed_call_decision import (
    MissedCallDecision,
    decide_missed_call,
    recently_messaged,
)

TEMPLATE = "Hi {{contactName}}, sorry we missed you. {{agentName}} at {{organizationName}}"
NY = ("America/New_York",)
#: 13:00 EST, outside quiet hours 21:00-08:00.
AFTERNOON = datetime(2027, 1, 15, 18, tzinfo=UTC)
#: 23:00 EST, inside them; they end at 08:00 EST, 13:00Z.
NIGHT = datetime(2027, 1, 15, 4, tzinfo=UTC)
EIGHT_AM = datetime(2027, 1, 15, 13, tzinfo=UTC)
TEXT = "Hi Ann, sorry we missed you. Bo at Acme Dental"


def org(**changes):
    """An organization record with the auto-message on, 48 hours of protection, quiet hours on."""
    record = {
        "name": "Acme Dental",
        "missed_call_auto_message_enabled": True,
        "missed_call_message": TEMPLATE,
        "contact_protection_period": 48,
        "quiet_hours": {"enabled": True, "start": "21:00", "end": "08:00", "mode": "queue"},
    }
    return {**record, **changes}


def decide(record=None, *, opted_out=False, last=None, zones=NY, at=AFTERNOON):
    """The decision for Ann, missed by Bo."""
    return decide_missed_call(
        org=record or org(),
        opted_out=opted_out,
        last_sent_at=last,
        zones=zones,
        at=at,
        contact_name="Ann",
        agent_name="Bo",
    )


REJECT = {"enabled": True, "start": "21:00", "end": "08:00", "mode": "reject"}
OFF = {"enabled": False, "start": "21:00", "end": "08:00", "mode": "queue"}


@pytest.mark.parametrize(
    ("record", "kwargs", "expected"),
    [
        # 1. Off, or nothing to send; before the ledger is even looked at.
        (org(missed_call_auto_message_enabled=False), {}, MissedCallDecision("skip", "disabled")),
        (org(missed_call_message=None), {}, MissedCallDecision("skip", "disabled")),
        (org(missed_call_message=" \n "), {}, MissedCallDecision("skip", "disabled")),
        (
            org(missed_call_auto_message_enabled=False),
            {"opted_out": True},
            MissedCallDecision("skip", "disabled"),
        ),
        # 2. Opted out, even when also recently messaged.
        (
            org(),
            {"opted_out": True, "last": AFTERNOON},
            MissedCallDecision("skip", "opted_out"),
        ),
        # 3. Contact protection: less than 48 hours since the last auto-message.
        (
            org(),
            {"last": AFTERNOON - timedelta(hours=47, minutes=59)},
            MissedCallDecision("skip", "recently_messaged"),
        ),
        (org(), {"last": AFTERNOON - timedelta(hours=48)}, MissedCallDecision("send", text=TEXT)),
        (
            org(contact_protection_period=0),
            {"last": AFTERNOON},
            MissedCallDecision("send", text=TEXT),
        ),
        # 4. Quiet hours as a send decision for the caller's number.
        (
            org(),
            {"at": NIGHT},
            MissedCallDecision("hold", text=TEXT, next_allowed_at=EIGHT_AM),
        ),
        (
            org(quiet_hours=REJECT),
            {"at": NIGHT},
            MissedCallDecision("skip", "quiet_hours", next_allowed_at=EIGHT_AM),
        ),
        (org(), {"zones": ()}, MissedCallDecision("skip", "time_zone_unknown")),
        (org(quiet_hours=OFF), {"zones": (), "at": NIGHT}, MissedCallDecision("send", text=TEXT)),
        # 5. Otherwise send.
        (org(), {}, MissedCallDecision("send", text=TEXT)),
    ],
)
def test_decide_missed_call(record, kwargs, expected):
    assert decide(record, **kwargs) == expected


def test_a_caller_spread_over_too_many_zones_is_skipped():
    """A toll-free caller with quiet hours 20:00-10:00: quiet somewhere for over 48 hours."""
    zones = ("America/Adak", "America/St_Johns", "Pacific/Guam", "Pacific/Pago_Pago")
    quiet = {"enabled": True, "start": "20:00", "end": "10:00", "mode": "queue"}
    decision = decide(org(quiet_hours=quiet), zones=zones, at=NIGHT)
    assert decision == MissedCallDecision("skip", "time_zone_ambiguous")


@pytest.mark.parametrize(
    ("last", "period", "recent"),
    [
        (None, 48, False),
        (AFTERNOON - timedelta(hours=1), 0, False),  # 0 hours: no limit
        (AFTERNOON - timedelta(hours=1), 1, False),  # exactly the period: allowed again
        (AFTERNOON - timedelta(minutes=59, seconds=59), 1, True),
        (AFTERNOON, 1, True),
        (AFTERNOON + timedelta(minutes=5), 1, True),  # reported out of order
    ],
)
def test_recently_messaged(last, period, recent):
    assert recently_messaged(last, AFTERNOON, period) is recent


@pytest.mark.parametrize(
    ("contact", "agent", "text"),
    [
        ("Ann", "Bo", TEXT),
        # Missing: absent, empty, only whitespace, only control characters.
        (None, None, "Hi there, sorry we missed you. our team at Acme Dental"),
        ("", "  ", "Hi there, sorry we missed you. our team at Acme Dental"),
        ("\t\n", "\x00\x07", "Hi there, sorry we missed you. our team at Acme Dental"),
        # Controls removed (C0, DEL, C1), whitespace (also Unicode) collapsed.
        (
            "A\x00n\x7fn\x85",
            " Bo\u00a0\u00a0 \n Li ",
            "Hi Ann, sorry we missed you. Bo Li at Acme Dental",
        ),
        # A value is inserted as text, never read as a template.
        ("{{agentName}}", "Bo", "Hi {{agentName}}, sorry we missed you. Bo at Acme Dental"),
    ],
)
def test_render_auto_message(contact, agent, text):
    rendered = missed_call.render_auto_message(
        TEMPLATE, contact_name=contact, agent_name=agent, organization_name="Acme Dental"
    )
    assert rendered == text


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("A" * 41, "A" * 40),
        ("x" * 39 + " yz", "x" * 39),  # cut, then no trailing space left
        ("Zahra\u200cKhani", "Zahra\u200cKhani"),  # ZWNJ is a format character, kept
        ("line\u2028break", "line break"),
        ("  ", None),
        (None, None),
    ],
)
def test_clean_value(value, cleaned):
    assert missed_call.clean_value(value) == cleaned


def test_the_result_is_trimmed_and_the_organization_name_capped():
    rendered = missed_call.render_auto_message(
        "  \n{{organizationName}} says hi {{contactName}}\n ",
        contact_name=None,
        agent_name=None,
        organization_name="Northwind Veterinary Clinic of Springfield East",
    )
    assert rendered == "Northwind Veterinary Clinic of Springfie says hi there"
