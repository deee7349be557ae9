"""Quiet hours in the recipient's local wall-clock time, with no I/O (PRODUCT.md rules 3-6).

In each zone, quiet hours of a local day run from the first instant the zone's clock reads that
day's ``start`` to the first instant it reads ``end`` (the next day's ``end`` when start > end).
"The first instant the clock reads W" gives both DST rules at once: a W inside a spring-forward
gap is first reached at the transition, and a W inside a fall-back overlap at its first
occurrence. So the end boundary is the first occurrence too: with a 21:00-01:30 window on a
fall-back night, the repeated 01:30-02:00 is not quiet (the contract's rule; it keeps every
boundary of a day inside that day's window).

Python's zoneinfo resolves a gap wall time with ``fold=0`` through the offset before the
transition (New York 02:30 becomes 03:30 EDT): a late start on exactly the night it matters. So
each boundary is checked by a round trip through UTC and a gap is resolved to its transition.

``at`` is used exactly, seconds included; the instants returned are boundaries (whole minutes for
every current zone). Zones come from the ``tzdata`` package only, never the host's zone files.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezones

#: What ``phonenumbers.timezone`` answers for a number it cannot place: not an IANA zone.
UNKNOWN_ZONE = "Etc/Unknown"
#: Quiet somewhere for longer than this after ``at``: the zones are too spread (rule 6). The
#: bound is inclusive: an open instant exactly 48 hours after ``at`` is still an answer.
AMBIGUITY_HORIZON = timedelta(hours=48)
#: The instants ``evaluate`` answers for: a few days either side must be representable, and a
#: send decision outside these years is a client's mistake (the HTTP layer answers 422).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 1, tzinfo=UTC)

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# Local days around ``at`` whose windows can touch (at - 1 day, at + 48 h]: the day before (a
# window wrapping past midnight into ``at``'s day) through three days after (48 h from late in
# ``at``'s day, plus a DST shift, reaches into the third day).
_DAYS = range(-1, 4)


class UnknownTimeZone(ValueError):
    """A name that is not an IANA zone of the pinned tzdata package."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Whether ``at`` is quiet, and the next instant that changes it (UTC, or None)."""

    quiet: bool
    #: Quiet in some zone at every instant of the 48 hours after ``at`` (then both are None).
    ambiguous: bool
    #: When quiet: the first instant after ``at`` outside quiet hours in every zone.
    next_allowed_at: datetime | None
    #: When not quiet: the first instant after ``at`` at which quiet hours begin in any zone.
    send_before: datetime | None


#: Shipped by tzdata, but not a place: tz's placeholder for "zone not set" (UTC, shown as
#: "-00"). Deciding in it would fail open for a recipient whose zone nobody knows.
NOT_A_PLACE = frozenset({"Factory"})


@functools.cache
def zone_names() -> frozenset[str]:
    """Every zone name (canonical and link) the pinned tzdata package ships, but Factory."""
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split()) - NOT_A_PLACE


def is_time_zone(name: str) -> bool:
    """True for an IANA zone name the pinned tzdata knows, spelt exactly."""
    return name in zone_names()


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The zone ``name`` read from the tzdata package, whatever the host has in TZPATH.

    ``ZoneInfo(name)`` would prefer ``/usr/share/zoneinfo`` (TZPATH is searched before tzdata);
    ``ZoneInfo.from_file`` reads exactly the packaged file, and this cache stands in for
    ZoneInfo's own.
    """
    if not is_time_zone(name):
        raise UnknownTimeZone(name)
    path = resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    with path.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def zones_for_number(number: phonenumbers.PhoneNumber | str) -> tuple[str, ...]:
    """The zones phonenumbers places ``number`` (E.164 or parsed) in; () when unknown."""
    if not isinstance(number, str):
        number = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return _zones_for_e164(number)


@functools.lru_cache(maxsize=65536)
def _zones_for_e164(number: str) -> tuple[str, ...]:
    """``zones_for_number`` on an E.164 string; cached, the lookup checks validity (~40 us)."""
    parsed = phonenumbers.parse(number, None)
    return tuple(z for z in phone_timezones.time_zones_for_number(parsed) if z != UNKNOWN_ZONE)


def parse_hhmm(value: str) -> int:
    """Minutes after midnight of a 24-hour ``HH:MM`` wall-clock time."""
    match = _HHMM.fullmatch(value)
    if match is None:
        raise ValueError(f"not an HH:MM time: {value!r}")
    return int(match[1]) * 60 + int(match[2])


def boundary(tz: ZoneInfo, day: date, minute: int) -> datetime:
    """The first instant (UTC) at which ``tz``'s clock reads ``minute`` past midnight of ``day``."""
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
    first = datetime(wall.year, wall.month, wall.day, wall.hour, wall.minute, tzinfo=tz)
    second = datetime(wall.year, wall.month, wall.day, wall.hour, wall.minute, tzinfo=tz, fold=1)
    early, late = sorted((first.astimezone(UTC), second.astimezone(UTC)))
    if early == late:
        return early
    if _reads(tz, early) == wall:
        return early  # an overlap: both instants read ``wall``; the first one counts
    # A gap: neither instant reads ``wall``; the clock jumps over it at the transition.
    return _transition(tz, early, late)


def _reads(tz: ZoneInfo, instant: datetime) -> datetime:
    """The naive wall-clock reading of ``tz`` at ``instant``."""
    local = instant.astimezone(tz)
    return datetime(local.year, local.month, local.day, local.hour, local.minute, local.second)


def _transition(tz: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant in (before, after] at which ``tz``'s offset changes (whole seconds in tzdata)."""
    target = after.astimezone(tz).utcoffset()
    lo, hi = int(before.timestamp()), int(after.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


@functools.lru_cache(maxsize=16384)
def _window(name: str, ordinal: int, start: int, end: int) -> tuple[datetime, datetime]:
    """Quiet hours of local day ``ordinal`` in zone ``name``, as [begin, end) in UTC."""
    tz = zone(name)
    day = date.fromordinal(ordinal)
    end_day = day if start < end else date.fromordinal(ordinal + 1)
    return boundary(tz, day, start), boundary(tz, end_day, end)


def evaluate(at: datetime, zones: Sequence[str], start: str, end: str) -> QuietHours:
    """Quiet hours ``start``-``end`` at ``at`` for a recipient in all of ``zones`` (rules 4-6).

    Raises ``UnknownTimeZone`` for a name tzdata lacks (``Etc/Unknown`` too) and ``ValueError``
    for a naive or out-of-range ``at``, no zones, a malformed ``HH:MM`` or start == end.
    """
    if at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    if not EARLIEST <= at < LATEST:
        raise ValueError(f"at must be from {EARLIEST:%Y-%m-%d} and before {LATEST:%Y-%m-%d}")
    if not zones:
        raise ValueError("at least one zone is needed")
    for name in zones:
        if not is_time_zone(name):
            raise UnknownTimeZone(name)
    first, last = parse_hhmm(start), parse_hhmm(end)
    if first == last:
        raise ValueError("start and end must differ")
    return _evaluate(at.astimezone(UTC), tuple(dict.fromkeys(zones)), first, last)


@functools.lru_cache(maxsize=4096)
def _evaluate(at: datetime, zones: tuple[str, ...], start: int, end: int) -> QuietHours:
    """``evaluate`` on checked arguments; a request's recipients share zones and ``at``."""
    windows = []
    for name in zones:
        today = at.astimezone(zone(name)).toordinal()
        for offset in _DAYS:
            begin, finish = _window(name, today + offset, start, end)
            if begin < finish:  # a window inside one gap is empty, and never begins
                windows.append((begin, finish))
    windows.sort()
    if not any(begin <= at < finish for begin, finish in windows):
        send_before = min(begin for begin, _ in windows if begin > at)
        return QuietHours(
            quiet=False, ambiguous=False, next_allowed_at=None, send_before=send_before
        )
    reach = at  # the end of the quiet stretch that contains ``at``, windows chained
    for begin, finish in windows:
        if begin > reach:
            break
        reach = max(reach, finish)
    if reach - at > AMBIGUITY_HORIZON:
        return QuietHours(quiet=True, ambiguous=True, next_allowed_at=None, send_before=None)
    return QuietHours(quiet=True, ambiguous=False, next_allowed_at=reach, send_before=None)
