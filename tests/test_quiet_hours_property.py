"""The quiet-hours rule against a brute-force minute-by-minute scan, on 10,000 random cases.

The scan knows nothing of gaps, folds or transitions. It watches each zone's wall clock minute
by minute and keeps the highest reading so far, the clock's high-water mark. A day's quiet hours
run from the first moment the clock reads ``start`` to the first moment it reads ``end``, so a
zone is quiet exactly when the mark's time of day is in [start, end) (wrapping). That gives the
contract's two DST rules with no special case: a boundary inside a spring-forward gap is first
passed at the jump, and while a fall-back hour repeats the mark stands still, so a boundary
counts at its first occurrence. Comparing the current wall time instead would NOT give the
overlap rule: it would re-enter a window whose end lies in the repeated hour (21:00-01:30 on New
York's fall-back night) and see a 01:30-01:45 window twice.

Each Hypothesis example is a recipient's zones, a window and five instants within 12 hours
that share one scan: 2,000 examples, 10,000 cases, deterministic, in about 15 seconds.

The scan relies on what holds for these zones in 2020-2035: offsets are whole minutes and a
clock never goes back by WARM_UP or more (both asserted as it reads), and no zone changes offset
twice within one UTC day (a day whose offset is the same at 00:00, 12:00 and 23:59 is read as
constant). Statuses then only change on whole minutes, so scanning whole minutes is exact for any
``at``, seconds included.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.rules import quiet_hours
from handlers.rules.quiet_hours import QuietHours

ZONES = (
    "America/New_York", "America/Chicago", "America/Boise", "America/Los_Angeles",
    "America/Phoenix", "America/St_Johns", "America/Halifax", "America/Santiago",
    "America/Havana", "America/Asuncion", "America/Scoresbysund", "America/Nuuk",
    "America/Mexico_City", "Australia/Lord_Howe", "Australia/Sydney", "Pacific/Chatham",
    "Pacific/Apia", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London",
    "Europe/Berlin", "Africa/Casablanca", "Asia/Tehran", "Asia/Gaza", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Tokyo", "Antarctica/Troll", "Etc/UTC",
)  # fmt: skip
FIRST_DAY = (datetime(2020, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
LAST_DAY = (datetime(2035, 12, 31, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).days
DAY = 1440  # minutes
WARM_UP = 180  # minutes of clock watched before the first instant, more than any clock goes back
HORIZON = 48 * 60 * 60
EXAMPLES = 2_000
INSTANTS = 5  # instants checked per example, on one shared scan
#: Wall times where the DST transitions of ZONES happen, drawn as often as any other minute.
NIGHT = (0, 30, 60, 90, 105, 120, 135, 150, 180, 210, 240, 23 * 60, 23 * 60 + 30)


def offset_minutes(name: str, minute: int) -> int:
    """The zone's UTC offset in minutes at the given minute since the epoch."""
    offset = datetime.fromtimestamp(minute * 60, quiet_hours.zone(name)).utcoffset()
    assert offset is not None and offset % timedelta(minutes=1) == timedelta(0)
    return offset // timedelta(minutes=1)


@functools.cache
def offsets_on(name: str, day: int) -> int | tuple[int, ...]:
    """The zone's offset at each minute of one UTC day (one number when it does not change)."""
    first = day * DAY
    samples = {offset_minutes(name, m) for m in (first, first + DAY // 2, first + DAY - 1)}
    if len(samples) == 1:
        return samples.pop()
    return tuple(offset_minutes(name, m) for m in range(first, first + DAY))


@functools.cache
def transition_days(name: str) -> tuple[int, ...]:
    """UTC days of 2020-2035 on which the zone changes offset (weekly samples, then daily)."""
    days = []
    for week in range(FIRST_DAY, LAST_DAY, 7):
        if offset_minutes(name, week * DAY) != offset_minutes(name, (week + 7) * DAY):
            for day in range(week, week + 7):
                if offset_minutes(name, day * DAY) != offset_minutes(name, (day + 1) * DAY):
                    days.append(day)
    return tuple(days)


class Scan:
    """Every zone's clock watched minute by minute; the quiet status of each minute, on demand."""

    def __init__(self, zones: list[str], start: int, end: int, first: int) -> None:
        self.zones, self.start, self.end, self.first = zones, start, end, first
        self.marks = dict.fromkeys(zones, -(10**9))
        self.status: list[bool] = []
        for minute in range(first - WARM_UP, first):
            self._watch(minute)

    def _watch(self, minute: int) -> bool:
        """Advance every clock to ``minute``; True when quiet in any zone."""
        quiet = False
        day, rest = divmod(minute, DAY)
        start, end = self.start, self.end
        for name in self.zones:
            table = offsets_on(name, day)
            local = minute + (table if isinstance(table, int) else table[rest])
            mark = self.marks[name]
            if local > mark:
                self.marks[name] = mark = local
            assert mark - local < WARM_UP, "a clock went back further than the warm-up"
            tod = mark % DAY
            quiet = quiet or (start <= tod < end if start < end else (tod >= start or tod < end))
        return quiet

    def quiet(self, minute: int) -> bool:
        """The status of ``minute`` (at or after the first), scanning up to it if needed."""
        index = minute - self.first
        while len(self.status) <= index:
            self.status.append(self._watch(self.first + len(self.status)))
        return self.status[index]

    def answer(self, at: datetime) -> QuietHours:
        """The rule's answer for ``at``, read off the minutes after it."""
        seconds = int(at.timestamp() // 1)  # whole seconds: statuses change on whole minutes
        here = seconds // 60
        now = self.quiet(here)
        minute = here + 1
        while minute * 60 <= seconds + HORIZON:
            if self.quiet(minute) != now:
                instant = datetime.fromtimestamp(minute * 60, UTC)
                if now:
                    return QuietHours(True, False, next_allowed_at=instant, send_before=None)
                return QuietHours(False, False, next_allowed_at=None, send_before=instant)
            minute += 1
        assert now, "quiet hours begin at least once in 48 hours"
        return QuietHours(True, True, next_allowed_at=None, send_before=None)


ZONE_COUNTS = st.sampled_from((1, 1, 1, 1, 1, 2, 2, 2, 3, 3))
CLOCK = st.one_of(st.sampled_from(NIGHT), st.integers(0, DAY - 1))
LENGTH = st.integers(1, DAY - 1)
ANYWHEN = st.integers(FIRST_DAY * 86400, LAST_DAY * 86400)
NEAR = st.integers(-36 * 3600, 24 * 3600)
LATER = st.integers(0, 12 * 3600)
MICRO = st.sampled_from((0, 0, 0, 1, 500_000, 999_999))


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], int, int, list[datetime]]:
    """Zones, a window and a few instants, often near a transition of the first zone."""
    count = draw(ZONE_COUNTS)
    zones = draw(st.lists(st.sampled_from(ZONES), min_size=count, max_size=count, unique=True))
    start = draw(CLOCK)
    end = draw(CLOCK) if draw(st.booleans()) else (start + draw(LENGTH)) % DAY
    if end == start:
        end = (start + 1) % DAY
    near = transition_days(zones[0])
    if near and draw(st.booleans()):
        base = near[draw(st.integers(0, len(near) - 1))] * 86400 + 43200 + draw(NEAR)
    else:
        base = draw(ANYWHEN)
    instants = []
    for _ in range(INSTANTS):
        seconds = base + draw(LATER)
        if draw(st.booleans()):
            seconds -= seconds % 60  # on a whole minute, where boundaries are
        instants.append(datetime.fromtimestamp(seconds, UTC).replace(microsecond=draw(MICRO)))
    return zones, start, end, sorted(instants)


checked: list[QuietHours] = []


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cases())
def agrees_with_brute_force(case: tuple[list[str], int, int, list[datetime]]) -> None:
    """The rule and the scan give the same answer at each instant of one case."""
    zones, start, end, instants = case
    window = (f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}")
    scan = Scan(zones, start, end, int(instants[0].timestamp() // 60))
    for at in instants:
        expected = scan.answer(at)
        assert quiet_hours.evaluate(at, zones, *window) == expected, at
        checked.append(expected)


def test_rule_matches_brute_force_scan():
    """10,000 deterministic random cases (2,000 examples of 5 instants), all outcomes among them."""
    checked.clear()
    agrees_with_brute_force()
    assert len(checked) >= EXAMPLES * INSTANTS == 10_000
    assert {(c.quiet, c.ambiguous) for c in checked} == {
        (True, False),
        (False, False),
        (True, True),
    }


def answer(at: datetime, zones: list[str], start: int, end: int) -> QuietHours:
    """The scan's answer for one instant."""
    return Scan(zones, start, end, int(at.timestamp() // 60)).answer(at)


def test_the_scan_sees_the_gap_and_the_overlap():
    """The scan itself, on New York's 2027 nights (02:30 gap, 01:30 overlap)."""
    ny = ["America/New_York"]
    gap = answer(datetime(2027, 3, 14, 6, 59, tzinfo=UTC), ny, 150, 360)
    assert gap.send_before == datetime(2027, 3, 14, 7, tzinfo=UTC)
    overlap = answer(datetime(2027, 11, 7, 6, 10, tzinfo=UTC), ny, 21 * 60, 90)
    assert not overlap.quiet
