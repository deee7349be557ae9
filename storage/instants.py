"""Instants as the storage layer keeps them: fixed-width UTC text, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def to_text(instant: datetime) -> str:
    """``instant`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str) -> datetime:
    """The instant ``to_text`` wrote."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
