"""The errors every storage backend raises.

A database fault (locked, full, gone) always arrives as ``StorageUnavailable``, never as a
driver's exception. A constraint the database refuses (an ``IntegrityError``) means the code let
through what it should have refused: it is left to propagate, a bug and a 500.
"""

from __future__ import annotations

from typing import Any


class NotFoundError(LookupError):
    """The record asked for does not exist."""


class VersionMismatchError(Exception):
    """The record's version is not the one the caller expected (stale If-Match)."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("version mismatch")
        self.current = current


class StorageUnavailable(Exception):
    """The database cannot take the request within its bounded wait (locked, full or gone).

    Nothing was written. ``retry_after`` is a hint in whole seconds for the client.
    """

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class IdempotencyConflict(Exception):
    """A request id was seen before with a different payload; nothing was changed."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id
