"""GSM-7 / UCS-2 detection and SMS segment counting (3GPP TS 23.038 / 23.040), with no I/O.

Decisions the product contract leaves open, each with a test:

- The basic set is TS 23.038's default alphabet exactly: 0x09 is capital ``Ç``; small ``ç``
  is not in it (some old handsets read 0x09 as ``ç``), so a text with ``ç`` is UCS-2.
- The extension table is the ten characters a handset can send: form feed, ``^ { } \\ [ ~ ] |``
  and ``€``; each costs two septets (the escape and the character).
- A segment boundary never splits an escape pair or a UTF-16 surrogate pair (an emoji outside
  the Basic Multilingual Plane): carriers and handsets move the whole character to the next
  segment, so such a text can need one segment more than its length divided by 153 (67).
  Grapheme clusters (an emoji with a skin tone, a flag, a family) may still be split between
  segments, as they are on the air.
- The empty text is one segment: a message without text is still one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

#: TS 23.038 default alphabet, in code order 0x00-0x7F (0x1B, the escape, is left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # Greek capitals: Δ is 0x10, and 0x1B (the escape) is left out
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
#: TS 23.038 extension table: each is sent as the escape 0x1B plus a second septet.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_SEGMENT = {"GSM-7": 160, "UCS-2": 70}
#: Per segment of a concatenated message: the user data header takes 7 septets (6 octets).
PER_SEGMENT = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsSize:
    """How a text goes on the air: its encoding, its length in units, and its segments."""

    encoding: Encoding
    units: int
    segments: int


def encoding(text: str) -> Encoding:
    """``GSM-7`` when every character is in the basic set or the extension table, else UCS-2."""
    gsm7 = GSM7_BASIC | GSM7_EXTENSION
    return "GSM-7" if all(char in gsm7 for char in text) else "UCS-2"


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    """The units each character takes: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def measure(text: str) -> SmsSize:
    """The encoding, length and segment count of ``text``."""
    enc = encoding(text)
    costs = _unit_costs(text, enc)
    units = sum(costs)
    if units <= SINGLE_SEGMENT[enc]:
        return SmsSize(enc, units, 1)
    limit, segments, used = PER_SEGMENT[enc], 1, 0
    for cost in costs:
        if used + cost > limit:  # the pair moves whole to the next segment
            segments, used = segments + 1, 0
        used += cost
    return SmsSize(enc, units, segments)


def segments(text: str) -> int:
    """The number of SMS segments ``text`` is sent in."""
    return measure(text).segments
