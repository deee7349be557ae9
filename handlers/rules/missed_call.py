"""Rules for the dashboard's missed-call settings, with no I/O.

The missed-call auto-message sender (a later feature) renders templates with ``render``, so
what the dashboard accepts and what the sender understands are the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = ("contactName", "agentName", "organizationName")

#: Anything between double braces counts as a token, so typos like ``{{ contactName }}`` or
#: ``{{customer}}`` are caught rather than sent to a contact verbatim.
_TOKEN = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def unknown_placeholders(message: str) -> list[str]:
    """The ``{{...}}`` tokens in ``message`` that are not allowed placeholders, in order, once."""
    unknown: list[str] = []
    for match in _TOKEN.finditer(message):
        if match.group(1) not in PLACEHOLDERS and match.group(0) not in unknown:
            unknown.append(match.group(0))
    return unknown


def normalize_message(message: str | None) -> str | None:
    """The stored form of a message: an empty string clears it to None."""
    return message or None


def enabling_without_message(enabled: bool, message: str | None) -> bool:
    """True when the auto-message would be on with no message to send."""
    return enabled and message is None


def render(message: str, values: Mapping[str, str]) -> str:
    """Fill the allowed placeholders of ``message`` from ``values`` (missing ones become "")."""
    return _TOKEN.sub(
        lambda m: values.get(m.group(1), "") if m.group(1) in PLACEHOLDERS else m.group(0),
        message,
    )
