"""Opaque page cursors of the developer API: a position, base64url-encoded under a prefix."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from handlers.errors import ValidationFailed


class Cursor:
    """Encodes and decodes the positions of one kind of list (``ae1:`` audit events, ...)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def encode(self, seq: int) -> str:
        """An opaque cursor for 'items before this one'."""
        raw = f"{self.prefix}{seq}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> int:
        """The position a cursor stands for; a cursor this server did not make is a 422."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            if raw.startswith(self.prefix):
                seq = int(raw[len(self.prefix) :])
                if 0 < seq < 2**63:
                    return seq
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
        raise ValidationFailed(details={"cursor": "is not a cursor returned by this API"})

    def page(self, items: list[dict[str, Any]], next_seq: int | None) -> dict[str, Any]:
        """A list's answer: the items, whether more follow, and the cursor to them."""
        return {
            "success": True,
            "data": items,
            "has_more": next_seq is not None,
            "next_cursor": self.encode(next_seq) if next_seq is not None else None,
        }
