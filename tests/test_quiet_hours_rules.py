"""The pure quiet-hours rule across zones and DST dates, tested without the app.

Transitions used (tzdata 2026f): New York 2027-03-14 07:00Z (02:00 EST -> 03:00 EDT) and
2027-11-07 06:00Z (02:00 EDT -> 01:00 EST); Lord Howe 2027-10-02 15:30Z (02:00 -> 02:30) and
2027-04-03 15:00Z (02:00 -> 01:30); Santiago 2027-09-05 04:00Z (00:00 -> 01:00) and 2027-04-04
03:00Z (24:00 -> 23:00); Havana 2028-03-12 05:00Z (00:00 -> 01:00); Troll 2027-03-28 01:00Z
(01:00 -> 03:00).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta, timezone
from importlib import resources
from zoneinfo import ZoneInfo, reset_tzpath

import phonenumbers
import pytest
from phonenumbers.tzdata import TIMEZONE_DATA

from handlers.rules import quiet_hours
from handlers.rules.quiet_hours import QuietHours, evaluate


def utc(*fields: int) -> datetime:
    """An instant in UTC."""
    return datetime(*fields, tzinfo=UTC)


def quiet_until(*fields: int) -> QuietHours:
    """Quiet now, allowed again at the given UTC instant."""
    return QuietHours(quiet=True, ambiguous=False, next_allowed_at=utc(*fields), send_before=None)


def open_until(*fields: int) -> QuietHours:
    """Not quiet now, quiet from the given UTC instant."""
    return QuietHours(quiet=False, ambiguous=False, next_allowed_at=None, send_before=utc(*fields))


AMBIGUOUS = QuietHours(quiet=True, ambiguous=True, next_allowed_at=None, send_before=None)
NY = ["America/New_York"]
IDAHO = ["America/Boise", "America/Los_Angeles"]
UTC_NY = ["Etc/UTC", "America/New_York"]
NY_TOKYO = ["America/New_York", "Asia/Tokyo"]
LORD_HOWE = ["Australia/Lord_Howe"]
SANTIAGO = ["America/Santiago"]
HAVANA = ["America/Havana"]
TROLL = ["Antarctica/Troll"]
PHOENIX = ["America/Phoenix"]
ST_JOHNS = ["America/St_Johns"]


@pytest.mark.parametrize(
    ("at", "zones", "window", "expected"),
    [
        # New York, an ordinary winter night: 23:00 EST held until 08:00 EST.
        (utc(2027, 1, 15, 4), NY, ("21:00", "08:00"), quiet_until(2027, 1, 15, 13)),
        (utc(2027, 1, 15, 18), NY, ("21:00", "08:00"), open_until(2027, 1, 16, 2)),
        # Start inclusive, end exclusive.
        (utc(2027, 1, 16, 2), NY, ("21:00", "08:00"), quiet_until(2027, 1, 16, 13)),
        (utc(2027, 1, 15, 13), NY, ("21:00", "08:00"), open_until(2027, 1, 16, 2)),
        # Seconds are kept: 20:59:59.5 is not quiet yet, quiet hours begin at 21:00:00.
        (utc(2027, 1, 16, 1, 59, 59, 500000), NY, ("21:00", "08:00"), open_until(2027, 1, 16, 2)),
        (utc(2027, 1, 15, 12, 59, 59), NY, ("21:00", "08:00"), quiet_until(2027, 1, 15, 13)),
        # A window that does not wrap midnight.
        (utc(2027, 1, 15, 17, 30), NY, ("12:00", "13:00"), quiet_until(2027, 1, 15, 18)),
        (utc(2027, 1, 15, 18), NY, ("12:00", "13:00"), open_until(2027, 1, 16, 17)),
        # New York spring forward: 02:30 does not exist; quiet hours begin at the transition
        # (07:00Z), not at 07:30Z where zoneinfo's fold=0 would put 02:30.
        (utc(2027, 3, 14, 6, 59), NY, ("02:30", "06:00"), open_until(2027, 3, 14, 7)),
        (utc(2027, 3, 14, 7), NY, ("02:30", "06:00"), quiet_until(2027, 3, 14, 10)),
        (utc(2027, 3, 14, 6, 30), NY, ("21:00", "02:30"), quiet_until(2027, 3, 14, 7)),
        # Both boundaries in the gap: no quiet hours that day.
        (utc(2027, 3, 14, 5), NY, ("02:00", "02:30"), open_until(2027, 3, 15, 6)),
        # New York fall back: 01:30 occurs twice; the first (EDT) counts, for start and end.
        (utc(2027, 11, 7, 5, 29), NY, ("01:30", "06:00"), open_until(2027, 11, 7, 5, 30)),
        (utc(2027, 11, 7, 6, 45), NY, ("01:30", "06:00"), quiet_until(2027, 11, 7, 11)),
        (utc(2027, 11, 7, 5), NY, ("21:00", "01:30"), quiet_until(2027, 11, 7, 5, 30)),
        (utc(2027, 11, 7, 6, 10), NY, ("21:00", "01:30"), open_until(2027, 11, 8, 2)),
        # Lord Howe's 30-minute shift: 02:15 does not exist, 01:45 occurs twice.
        (utc(2027, 10, 2, 15, 29), LORD_HOWE, ("02:15", "07:00"), open_until(2027, 10, 2, 15, 30)),
        (utc(2027, 10, 2, 15, 30), LORD_HOWE, ("02:15", "07:00"), quiet_until(2027, 10, 2, 20)),
        (utc(2027, 4, 3, 14, 44), LORD_HOWE, ("01:45", "06:00"), open_until(2027, 4, 3, 14, 45)),
        # Midnight transitions: 00:00 does not exist in Santiago and Havana on these days.
        (utc(2027, 9, 5, 3, 59), SANTIAGO, ("00:00", "07:00"), open_until(2027, 9, 5, 4)),
        (utc(2027, 9, 5, 3, 30), SANTIAGO, ("22:00", "00:00"), quiet_until(2027, 9, 5, 4)),
        (utc(2028, 3, 12, 4, 59), HAVANA, ("00:00", "06:00"), open_until(2028, 3, 12, 5)),
        # Santiago falls back at midnight: Saturday 23:30 first occurs at 02:30Z.
        (utc(2027, 4, 4, 2, 29), SANTIAGO, ("23:30", "06:00"), open_until(2027, 4, 4, 2, 30)),
        # Troll's two-hour jump: 02:00 does not exist; quiet from the transition.
        (utc(2027, 3, 28, 0, 59), TROLL, ("02:00", "05:00"), open_until(2027, 3, 28, 1)),
        # Arizona keeps MST on New York's spring-forward day.
        (utc(2027, 3, 14, 14, 59), PHOENIX, ("21:00", "08:00"), quiet_until(2027, 3, 14, 15)),
        # Newfoundland, UTC-3:30.
        (utc(2027, 1, 15, 0, 30), ST_JOHNS, ("21:00", "08:00"), quiet_until(2027, 1, 15, 11, 30)),
        # Idaho's 208 is in two zones: quiet while quiet in either, open when open in both.
        (utc(2027, 1, 15, 15, 30), IDAHO, ("21:00", "08:00"), quiet_until(2027, 1, 15, 16)),
        (utc(2027, 1, 15, 20), IDAHO, ("21:00", "08:00"), open_until(2027, 1, 16, 4)),
        # Quiet stretches of two zones chain: New York 02-13Z, Tokyo 12-23Z.
        (utc(2027, 1, 15, 5), NY_TOKYO, ("21:00", "08:00"), quiet_until(2027, 1, 15, 23)),
        # UTC and New York with 00:00-19:00 leave no open minute while New York is on EST;
        # the first is 23:00Z on spring-forward day. Exactly 48 hours ahead is still in time.
        (utc(2027, 3, 12, 23), UTC_NY, ("00:00", "19:00"), quiet_until(2027, 3, 14, 23)),
        (utc(2027, 3, 12, 22, 59), UTC_NY, ("00:00", "19:00"), AMBIGUOUS),
        # Quiet somewhere for more than 48 hours.
        (utc(2027, 1, 15, 5), NY_TOKYO, ("08:00", "07:00"), AMBIGUOUS),
    ],
)
def test_evaluate(at, zones, window, expected):
    assert evaluate(at, zones, *window) == expected


def test_gap_boundary_is_the_transition_not_where_zoneinfo_puts_it():
    """Regression: zoneinfo's fold=0 puts New York 02:30 on spring-forward day at 03:30 EDT."""
    ny = quiet_hours.zone("America/New_York")
    assert datetime(2027, 3, 14, 2, 30, tzinfo=ny).astimezone(UTC) == utc(2027, 3, 14, 7, 30)
    assert quiet_hours.boundary(ny, date(2027, 3, 14), 150) == utc(2027, 3, 14, 7)


@pytest.mark.parametrize(
    ("number", "window", "expected"),
    [
        # 42 zones from Guam (+10) to Pago Pago (-11): open only 22:00-23:00Z.
        ("+18005550123", ("21:00", "08:00"), quiet_until(2027, 1, 15, 22)),
        ("+18005550123", ("20:00", "10:00"), AMBIGUOUS),
        ("+17095550123", ("21:00", "08:00"), open_until(2027, 1, 16, 0, 30)),
    ],
)
def test_evaluate_numbers_in_many_zones(number, window, expected):
    at = utc(2027, 1, 15, 20) if number.startswith("+1709") else utc(2027, 1, 15, 4)
    assert evaluate(at, quiet_hours.zones_for_number(number), *window) == expected


@pytest.mark.parametrize(
    ("number", "zones"),
    [
        ("+12125550123", ("America/New_York",)),
        ("+12085550123", ("America/Boise", "America/Los_Angeles")),
        ("+17095550123", ("America/Halifax", "America/St_Johns")),
        ("+15555555555", ()),  # not a valid number: Etc/Unknown
        ("+80012345678", ()),  # a non-geographic number
    ],
)
def test_zones_for_number(number, zones):
    assert quiet_hours.zones_for_number(number) == zones


def test_zones_for_a_parsed_number():
    parsed = phonenumbers.parse("+12085550123", None)
    assert quiet_hours.zones_for_number(parsed) == ("America/Boise", "America/Los_Angeles")


def test_toll_free_number_is_in_many_zones():
    assert len(quiet_hours.zones_for_number("+18005550123")) == 42


def test_every_zone_phonenumbers_names_is_in_tzdata():
    named = {z for zones in TIMEZONE_DATA.values() for z in zones} - {quiet_hours.UNKNOWN_ZONE}
    assert named <= quiet_hours.zone_names()


def test_zones_come_from_the_tzdata_package_not_the_host(tmp_path):
    """A host file under TZPATH that disagrees with tzdata is ignored."""
    fake = tmp_path / "America" / "New_York"
    fake.parent.mkdir()
    source = resources.files("tzdata.zoneinfo").joinpath("Etc", "UTC")
    with source.open("rb") as data, fake.open("wb") as out:
        shutil.copyfileobj(data, out)
    quiet_hours.zone.cache_clear()
    reset_tzpath(to=[str(tmp_path)])
    try:
        january = datetime(2027, 1, 15, 12)
        assert ZoneInfo.no_cache("America/New_York").utcoffset(january) == timedelta(0)
        ny = quiet_hours.zone("America/New_York")
        assert ny.utcoffset(january) == timedelta(hours=-5)
    finally:
        reset_tzpath()
        quiet_hours.zone.cache_clear()


@pytest.mark.parametrize(
    "name",
    # Factory ships with tzdata as the placeholder for "zone not set": not a place to decide in.
    ["Etc/Unknown", "Factory", "america/new_york", "Mars/Olympus", "", "../etc"],
)
def test_unknown_zone_names_are_refused(name):
    assert not quiet_hours.is_time_zone(name)
    with pytest.raises(quiet_hours.UnknownTimeZone):
        evaluate(utc(2027, 1, 15), [name], "21:00", "08:00")


@pytest.mark.parametrize(
    ("at", "zones", "start", "end"),
    [
        (datetime(2027, 1, 15), NY, "21:00", "08:00"),  # naive
        (datetime(9999, 12, 31, tzinfo=UTC), NY, "21:00", "08:00"),
        (datetime(1, 1, 1, tzinfo=UTC), NY, "21:00", "08:00"),
        (utc(2027, 1, 15), [], "21:00", "08:00"),
        (utc(2027, 1, 15), NY, "21:00", "21:00"),
        (utc(2027, 1, 15), NY, "24:00", "08:00"),
        (utc(2027, 1, 15), NY, "9:00", "08:00"),
        (utc(2027, 1, 15), NY, "21:00", "08:60"),
    ],
)
def test_evaluate_refuses_bad_arguments(at, zones, start, end):
    with pytest.raises(ValueError):
        evaluate(at, zones, start, end)


def test_at_in_another_offset_is_the_same_instant():
    at = datetime(2027, 1, 14, 23, tzinfo=timezone(timedelta(hours=-5)))
    assert evaluate(at, NY, "21:00", "08:00") == quiet_until(2027, 1, 15, 13)
