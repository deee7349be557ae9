"""Instants on /v1: the request's ``at`` read exactly, answers written in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.rules.quiet_hours import EARLIEST, LATEST

AT_FORMAT = "must be an RFC 3339 date-time with an offset, such as 2026-12-03T04:00:00Z"
AT_RANGE = f"must be from {EARLIEST:%Y-%m-%d} and before {LATEST:%Y-%m-%d} (UTC)"


def parse_at(value: str | None) -> tuple[datetime, str | None]:
    """The instant ``at`` names (now when absent), and what is wrong with it (None: nothing).

    The schema's ``date-time`` format has checked the syntax; RFC 3339 also allows a lower-case
    ``t``/``z`` and a leap second (``:60``), which Python cannot represent, so it is refused.
    """
    if value is None:
        return datetime.now(UTC), None
    try:
        at = datetime.fromisoformat(value.upper())
    except ValueError:
        return datetime.now(UTC), AT_FORMAT + " (a leap second, :60, is not accepted)"
    if at.utcoffset() is None:
        return datetime.now(UTC), AT_FORMAT
    if not EARLIEST <= at < LATEST:
        return at, AT_RANGE
    return at.astimezone(UTC), None


def rfc3339(instant: datetime | None) -> str | None:
    """``instant`` in UTC with whole seconds (``2026-12-03T13:00:00Z``), or None."""
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
