"""Inbound keyword matching (STOP, START, HELP), as PRODUCT.md defines it, with no I/O.

``classify`` is the whole rule: normalize, match the whole message against the lists, then the
first-word rule, else no keyword. Decisions PRODUCT.md leaves open, each with a test:

- Invisible format characters (Unicode category Cf: zero-width space/joiner/non-joiner, word
  joiner, BOM, soft hyphen, direction marks) are removed everywhere before matching: a contact
  who sees ``STOP`` on their screen sent STOP, whatever a keyboard or a copy-paste slipped in.
- Every Unicode dash (hyphen, non-breaking hyphen, en and em dash, minus sign ...) reads as
  ``-``, so ``OPT`` en dash ``OUT`` is ``OPT-OUT``; and a
  hyphen joins the parts of a listed keyword like a space does: ``STOP-ALL`` is ``STOP ALL``, and
  as a first word ``STOP-ALL`` / ``OPT-OUT`` are ``STOPALL`` / ``OPTOUT``. A missed opt-out costs
  far more than a false one, and no conversation starts with ``STOP-ALL``. Other hyphenated
  words stay words: ``Stop-gap measures`` is conversation.
- Words are separated by whitespace only, so ``Stop.Thanks`` is one word and conversation, while
  ``Stop. Thanks`` is STOP.
- Turkish dotted capital I (U+0130, what caps lock on a Turkish keyboard types) and dotless
  small i (U+0131) both fold to ``I``: a Turkish ``INFO`` or ``quit`` is INFO or QUIT.
- Look-alike letters from other scripts (Cyrillic ES TE O ER, which read ``STOP``) are not
  folded: NFKC keeps them apart, and so does this rule.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Category = Literal["opt_out", "opt_in", "help"]

#: The whole-message keywords, canonical spelling first, in PRODUCT.md's order.
WHOLE_MESSAGE: dict[str, Category] = {
    **dict.fromkeys(
        (
            "STOP",
            "STOPALL",
            "STOP ALL",
            "UNSUBSCRIBE",
            "UNSUB",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "OPT OUT",
            "OPT-OUT",
        ),
        "opt_out",
    ),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "opt_in"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}

#: First words that opt out even when more text follows ("Stop. Thank you").
FIRST_WORD: tuple[str, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "REVOKE", "OPTOUT")

#: Hyphenated spellings of the listed keywords: whole message "STOP-ALL" is "STOP ALL" (OPT-OUT
#: is listed itself), first word "STOP-ALL" / "OPT-OUT" is STOPALL / OPTOUT.
_HYPHENATED = {key.replace(" ", "-"): key for key in WHOLE_MESSAGE if " " in key}
_FIRST_WORDS = {**{word: word for word in FIRST_WORD}, "STOP-ALL": "STOPALL", "OPT-OUT": "OPTOUT"}


@dataclass(frozen=True)
class Match:
    """What an inbound body asks for: the matched keyword (upper case) and its category."""

    keyword: str | None
    category: Category | None


NO_KEYWORD = Match(None, None)


def _is_dash(char: str) -> bool:
    """True for hyphen-minus and every other dash a phone keyboard may type."""
    return unicodedata.category(char) == "Pd" or char == "\u2212"


def _strip_ends(text: str) -> str:
    """``text`` without leading and trailing characters that are neither letters nor digits."""
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def normalize(body: str) -> str:
    """The comparable form of a body: NFKC, ends stripped, spaces collapsed, upper case.

    ASCII text skips the first two steps, which leave it as it is (NFKC changes no ASCII
    character; none is a format character; the one ASCII dash is already ``-``): a 1,600
    character message takes 19 us instead of 420.
    """
    text = body
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = "".join(
            "-" if _is_dash(char) else char for char in text if unicodedata.category(char) != "Cf"
        )
    text = " ".join(_strip_ends(text).split())
    return text.upper().replace("I\u0307", "I").replace("\u0130", "I")


def _first_word(text: str) -> str | None:
    """The canonical first-word keyword that starts ``text``, if any.

    Only called once the whole message matched no keyword, so more text always follows it.
    """
    return _FIRST_WORDS.get(_strip_ends(text.partition(" ")[0]))


def classify(body: str) -> Match:
    """The keyword and category of an inbound message body, or ``NO_KEYWORD``."""
    text = normalize(body)
    keyword = text if text in WHOLE_MESSAGE else _HYPHENATED.get(text)
    if keyword is not None:
        return Match(keyword, WHOLE_MESSAGE[keyword])
    keyword = _first_word(text)
    return NO_KEYWORD if keyword is None else Match(keyword, "opt_out")
