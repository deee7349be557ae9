"""Rules for the dashboard's missed-call settings, with no I/O.

The missed-call auto-message sender renders templates with ``render_auto_message`` (built on
``render``), so what the dashboard accepts and what the sender understands are the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = ("contactName", "agentName", "organizationName")
#: What a missing contact or agent name becomes, so nobody is texted "Hi , sorry we missed you".
FALLBACKS = {"contactName": "there", "agentName": "our team"}
MAX_VALUE_LENGTH = 40

# Control characters (Unicode Cc: C0, DEL, C1) are removed, except the five that are whitespace,
# which become a space and are collapsed like any other whitespace. Format characters (Cf) stay:
# ZWNJ is part of Persian names and ZWJ of emoji.
_CONTROLS = {
    code: (" " if chr(code) in "\t\n\v\f\r" else None)
    for code in (*range(0x20), *range(0x7F, 0xA0))
}

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


def clean_value(value: str | None) -> str | None:
    """A placeholder value as sent: controls removed, whitespace collapsed, cut to 40 characters.

    None when nothing is left (absent, empty, only whitespace or only control characters).
    """
    if value is None:
        return None
    cleaned = " ".join(value.translate(_CONTROLS).split())[:MAX_VALUE_LENGTH].rstrip()
    return cleaned or None


def render_auto_message(
    message: str, *, contact_name: str | None, agent_name: str | None, organization_name: str
) -> str:
    """The missed-call text: placeholders filled with cleaned values or fallbacks, trimmed.

    Values are inserted once, never re-read as template: a contact named ``{{agentName}}`` is
    greeted by that name.
    """
    values = {
        "contactName": clean_value(contact_name) or FALLBACKS["contactName"],
        "agentName": clean_value(agent_name) or FALLBACKS["agentName"],
        "organizationName": clean_value(organization_name) or "",
    }
    return render(message, values).strip()
