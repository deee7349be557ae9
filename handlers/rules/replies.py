"""What an inbound keyword does: the action, the reply and the ledger change, with no I/O.

PRODUCT.md, "Effects": one confirmation only (a second STOP, or a START from a contact who is
not opted out, changes nothing and gets no reply); HELP is answered whether or not the contact
is opted out; ``auto_replies.enabled`` false removes the reply and nothing else.

Decisions the contract leaves open, each with a test:

- A custom ``stop_text`` / ``start_text`` / ``help_text`` is sent verbatim; ``{name}`` is filled
  in the platform defaults only, so a custom text reads exactly as the organization wrote it.
- An opt-out keyword from a contact whose entry was added by hand (source ``api``) claims it:
  the entry becomes the contact's own (``claim``), so nobody can remove it by hand any more
  (DELETE refuses keyword entries). Without that, an operator who deletes the entry added by
  hand would text someone who had also texted STOP. The action and reply stay those of a
  contact already opted out: ``none``, no reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from handlers.rules.keywords import Category
from handlers.rules.sms_encoding import measure

Action = Literal["opted_out", "opted_in", "help", "none"]
#: ``claim``: an entry added by hand becomes the contact's own (source keyword).
LedgerEffect = Literal["add", "claim", "remove", "none"]
#: The source of a contact's ledger entry; None: not opted out.
Source = Literal["keyword", "api"] | None

#: The platform's replies when the organization set none; ``{name}`` is its name.
DEFAULT_TEXTS: dict[Category, str] = {
    "opt_out": (
        "{name}: You are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe."
    ),
    "opt_in": "{name}: You are resubscribed. Reply HELP for help or STOP to unsubscribe.",
    "help": (
        "{name}: Reply STOP to unsubscribe or START to resubscribe. Msg & data rates may apply."
    ),
}
#: The auto_replies field holding the organization's own text for each category.
CUSTOM_TEXT_FIELDS: dict[Category, str] = {
    "opt_out": "stop_text",
    "opt_in": "start_text",
    "help": "help_text",
}


@dataclass(frozen=True)
class Outcome:
    """The answer to one inbound message: what happened, what to text back, the ledger change."""

    action: Action
    reply: str | None
    ledger: LedgerEffect


NOTHING = Outcome("none", None, "none")
CLAIM = Outcome("none", None, "claim")


def reply_text(category: Category, auto_replies: Mapping[str, Any], name: str) -> str:
    """The organization's own text for ``category`` when set, else the default with its name."""
    custom = auto_replies.get(CUSTOM_TEXT_FIELDS[category])
    if custom is not None:
        return custom
    return DEFAULT_TEXTS[category].replace("{name}", name)


def _effect(category: Category | None, source: Source) -> tuple[Action, LedgerEffect]:
    """The action and ledger change of a keyword, before any reply is chosen."""
    if category == "opt_out" and source is None:
        return "opted_out", "add"
    if category == "opt_out" and source == "api":
        return "none", "claim"
    if category == "opt_in" and source is not None:
        return "opted_in", "remove"
    if category == "help":
        return "help", "none"
    return "none", "none"


def decide(
    category: Category | None, source: Source, auto_replies: Mapping[str, Any], name: str
) -> Outcome:
    """The outcome of a keyword for a contact whose ledger entry has ``source`` (None: the
    contact is not opted out)."""
    action, ledger = _effect(category, source)
    if action == "none" or category is None:
        return CLAIM if ledger == "claim" else NOTHING
    # The reply is chosen from the category, never from the ledger after the change, so the
    # confirmation of a STOP cannot be lost to the block it creates.
    reply = reply_text(category, auto_replies, name) if auto_replies["enabled"] else None
    return Outcome(action, reply, ledger)


def reply_body(text: str | None) -> dict[str, Any] | None:
    """The inbound answer's ``reply`` object: ``{text, encoding, segments}``, or None."""
    if text is None:
        return None
    size = measure(text)
    return {"text": text, "encoding": size.encoding, "segments": size.segments}
