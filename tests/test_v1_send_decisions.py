"""POST /v1/send_decisions: the ledger, quiet hours in each recipient's zones, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import OPERATOR, bearer
from storage import StorageUnavailable

URL = "/v1/send_decisions"
NEW_YORK = "+12125550123"
LOS_ANGELES = "+13105550123"
IDAHO = "+12085550123"  # America/Boise and America/Los_Angeles
NO_ZONE = "+441632960123"  # a UK drama number: phonenumbers knows no zone for it
#: 23:00 in New York, 20:00 in Los Angeles (December: EST, PST).
LATE = "2026-12-03T04:00:00Z"


@pytest.fixture
def key(org: dict[str, Any], make_key) -> str:
    """The message pipeline's key."""
    return make_key(org["id"], "messaging")


def quiet_hours(store, org_id: str, **block: Any) -> None:
    """Set the organization's quiet hours (21:00-08:00 unless given), enabled."""
    wanted = {"enabled": True, "start": "21:00", "end": "08:00", "mode": "queue", **block}
    store.modify_org(
        org_id,
        lambda o: ({**o, "quiet_hours": wanted}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )


def ask(client, key: str, *recipients: Any, at: str | None = LATE):
    """Ask for decisions; a recipient is a number or a dict."""
    body: dict[str, Any] = {
        "recipients": [r if isinstance(r, dict) else {"phone_number": r} for r in recipients]
    }
    if at is not None:
        body["at"] = at
    return client.post(URL, json=body, headers=bearer(key))


def decisions(client, key: str, *recipients: Any, at: str | None = LATE) -> list[dict]:
    answer = ask(client, key, *recipients, at=at)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_quiet_hours_disabled_sends(client, key):
    assert decisions(client, key, NEW_YORK) == [
        {
            "phone_number": NEW_YORK,
            "decision": "send",
            "reasons": [],
            "time_zones": [],
            "next_allowed_at": None,
            "send_before": None,
        }
    ]


@pytest.mark.parametrize("enabled", [False, True])
def test_opted_out_is_blocked_whatever_the_hour(client, store, org, key, enabled):
    quiet_hours(store, org["id"], enabled=enabled)
    store.put_opt_out(org["id"], LOS_ANGELES, reason=None, actor=OPERATOR, surface="cli")
    [decision] = decisions(client, key, LOS_ANGELES, at="2026-12-03T20:00:00Z")
    assert (decision["decision"], decision["reasons"], decision["time_zones"]) == (
        "block",
        ["opted_out"],
        [],
    )
    assert (decision["next_allowed_at"], decision["send_before"]) == (None, None)


@pytest.mark.parametrize(("mode", "verdict"), [("queue", "hold"), ("reject", "block")])
def test_quiet_at_23_00_in_new_york_until_08_00(client, store, org, key, mode, verdict):
    quiet_hours(store, org["id"], mode=mode)
    [decision] = decisions(client, key, NEW_YORK)
    assert decision == {
        "phone_number": NEW_YORK,
        "decision": verdict,
        "reasons": ["quiet_hours"],
        "time_zones": ["America/New_York"],
        "next_allowed_at": "2026-12-03T13:00:00Z",
        "send_before": None,
    }


def test_not_quiet_says_when_quiet_hours_begin(client, store, org, key):
    """20:00 in Los Angeles: send, before 21:00 there (05:00 UTC)."""
    quiet_hours(store, org["id"])
    [decision] = decisions(client, key, LOS_ANGELES)
    assert (decision["decision"], decision["send_before"], decision["next_allowed_at"]) == (
        "send",
        "2026-12-03T05:00:00Z",
        None,
    )


def test_a_number_without_a_zone_fails_closed(client, store, org, key):
    quiet_hours(store, org["id"])
    [decision] = decisions(client, key, NO_ZONE, at="2026-12-03T12:00:00Z")
    assert (decision["decision"], decision["reasons"], decision["time_zones"]) == (
        "block",
        ["time_zone_unknown"],
        [],
    )
    [given] = decisions(
        client, key, {"phone_number": NO_ZONE, "time_zone": "Europe/London"}, at=LATE
    )
    assert (given["decision"], given["time_zones"]) == ("hold", ["Europe/London"])


def test_an_explicit_time_zone_wins_over_the_number(client, store, org, key):
    quiet_hours(store, org["id"])
    [decision] = decisions(
        client, key, {"phone_number": NEW_YORK, "time_zone": "America/Los_Angeles"}
    )
    assert (decision["decision"], decision["time_zones"]) == ("send", ["America/Los_Angeles"])


def test_quiet_in_any_zone_is_quiet_until_open_in_every_zone(client, store, org, key):
    """Idaho's 208 is in Boise and Los Angeles: at 07:30 in Boise it is 06:30 in Los Angeles,
    so the message waits for 08:00 in Los Angeles."""
    quiet_hours(store, org["id"])
    [decision] = decisions(client, key, IDAHO, at="2026-12-03T14:30:00Z")
    assert decision["time_zones"] == ["America/Boise", "America/Los_Angeles"]
    assert (decision["decision"], decision["next_allowed_at"]) == (
        "hold",
        "2026-12-03T16:00:00Z",
    )


def test_zones_quiet_for_48_hours_together_are_ambiguous(client, store, org, key):
    """Quiet 08:00-07:00 (open one hour a day): Boise's open hour is Los Angeles' quiet one."""
    quiet_hours(store, org["id"], start="08:00", end="07:00")
    [decision] = decisions(client, key, IDAHO)
    assert decision == {
        "phone_number": IDAHO,
        "decision": "block",
        "reasons": ["time_zone_ambiguous"],
        "time_zones": ["America/Boise", "America/Los_Angeles"],
        "next_allowed_at": None,
        "send_before": None,
    }


@pytest.mark.parametrize(
    ("at", "verdict"),
    [
        ("2026-12-03T12:59:59.500Z", "hold"),  # 07:59:59.5 in New York: still quiet
        ("2026-12-03T13:00:00Z", "send"),
        ("2026-12-03T08:00:00-05:00", "send"),
        ("2026-12-03t01:59:59z", "send"),  # 20:59:59 the evening before (RFC 3339 allows t/z)
        ("2026-12-03T02:00:00Z", "hold"),
    ],
)
def test_at_is_used_exactly_seconds_included(client, store, org, key, at, verdict):
    quiet_hours(store, org["id"])
    assert decisions(client, key, NEW_YORK, at=at)[0]["decision"] == verdict


def test_decisions_come_in_request_order_with_one_ledger_query(
    client, store, org, key, app_store, monkeypatch
):
    """100 recipients (a number listed twice answered twice): one ledger lookup in all."""
    quiet_hours(store, org["id"])
    store.put_opt_out(org["id"], IDAHO, reason=None, actor=OPERATOR, surface="cli")
    lookups = []
    real = app_store.opted_out

    async def counting(org_id, numbers):
        lookups.append(len(numbers))
        return await real(org_id, numbers)

    monkeypatch.setattr(app_store, "opted_out", counting)
    numbers = [NEW_YORK, LOS_ANGELES, IDAHO, NEW_YORK] * 25
    answered = decisions(client, key, *numbers)
    assert [d["phone_number"] for d in answered] == numbers
    assert [d["decision"] for d in answered[:4]] == ["hold", "send", "block", "hold"]
    assert lookups == [3]


@pytest.mark.parametrize(
    ("recipients", "at", "field", "detail"),
    [
        ([{"phone_number": "+1415555"}], LATE, "recipients[0].phone_number", "not a possible"),
        (
            [{"phone_number": NEW_YORK}, {"phone_number": "+4402071234567"}],
            LATE,
            "recipients[1].phone_number",
            "canonical",
        ),
        ([{"phone_number": "14155550123"}], LATE, "recipients[0].phone_number", "E.164"),
        ([{}], LATE, "recipients[0].phone_number", "is required"),
        (
            [{"phone_number": NEW_YORK, "time_zone": "Mars/Olympus"}],
            LATE,
            "recipients[0].time_zone",
            "IANA",
        ),
        (
            [{"phone_number": NEW_YORK, "time_zone": "Etc/Unknown"}],
            LATE,
            "recipients[0].time_zone",
            "IANA",
        ),
        (
            [{"phone_number": NEW_YORK, "time_zone": "Factory"}],
            LATE,
            "recipients[0].time_zone",
            "IANA",
        ),
        (
            [{"phone_number": NEW_YORK, "time_zone": "america/new_york"}],
            LATE,
            "recipients[0].time_zone",
            "IANA",
        ),
        ([{"phone_number": NEW_YORK, "name": "x"}], LATE, "recipients[0].name", "unknown"),
        ([{"phone_number": NEW_YORK}] * 101, LATE, "recipients", "at most 100 items"),
        ([], LATE, "recipients", "at least 1 item"),
        ([{"phone_number": NEW_YORK}], "2026-12-03T04:00:00", "at", "date-time"),
        ([{"phone_number": NEW_YORK}], "2026-12-31T23:59:60Z", "at", "date-time"),
        ([{"phone_number": NEW_YORK}], "1899-12-31T23:00:00Z", "at", "from 1900-01-01"),
        ([{"phone_number": NEW_YORK}], "tomorrow", "at", "date-time"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_decides_nothing(
    client, store, org, key, app_store, monkeypatch, recipients, at, field, detail
):
    quiet_hours(store, org["id"])

    async def never(*_args):
        raise AssertionError("the ledger was read for a refused request")

    monkeypatch.setattr(app_store, "opted_out", never)
    answer = client.post(URL, json={"recipients": recipients, "at": at}, headers=bearer(key))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert detail in error["details"][field], error["details"]


def test_every_bad_field_is_reported_at_once(client, key):
    body = {
        "recipients": [
            {"phone_number": "+1415555", "time_zone": "Nowhere/Land"},
            {"phone_number": NEW_YORK},
            {"phone_number": "+4402071234567"},
        ],
        "at": "1800-01-01T00:00:00Z",
    }
    details = client.post(URL, json=body, headers=bearer(key)).json()["error"]["details"]
    assert set(details) == {
        "recipients[0].phone_number",
        "recipients[0].time_zone",
        "recipients[2].phone_number",
        "at",
    }


def test_a_database_fault_is_503_with_retry_after(client, key, app_store, monkeypatch):
    async def locked(*_args):
        raise StorageUnavailable("database is locked", retry_after=2)

    monkeypatch.setattr(app_store, "get_org", locked)
    answer = ask(client, key, NEW_YORK)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_writes_nothing(client, store, org, key):
    quiet_hours(store, org["id"])
    before, _ = store.list_events(org["id"], limit=100)
    decisions(client, key, NEW_YORK, LOS_ANGELES)
    assert store.list_events(org["id"], limit=100)[0] == before


def test_needs_the_messaging_scope(client, org, make_key):
    answer = ask(client, make_key(org["id"], "opt_outs:read", "org:admin:write"), NEW_YORK)
    assert answer.status_code == 403
