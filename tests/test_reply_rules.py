"""Reply selection and the keyword effects table (PRODUCT.md, "Effects" and "Reply texts")."""

from __future__ import annotations

import pytest

from handlers.rules import replies
from handlers.rules.replies import Outcome

ON = {"enabled": True, "stop_text": None, "help_text": None, "start_text": None}
OFF = {**ON, "enabled": False}
CUSTOM = {"enabled": True, "stop_text": "Bye", "help_text": "Call 555", "start_text": "Hi again"}

STOP = "Acme: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
START = "Acme: You are resubscribed. Reply HELP for help or STOP to unsubscribe."
HELP = "Acme: Reply STOP to unsubscribe or START to resubscribe. Msg & data rates may apply."


@pytest.mark.parametrize(
    ("category", "auto_replies", "text"),
    [
        ("opt_out", ON, STOP),
        ("opt_in", ON, START),
        ("help", ON, HELP),
        ("opt_out", CUSTOM, "Bye"),
        ("opt_in", CUSTOM, "Hi again"),
        ("help", CUSTOM, "Call 555"),
        # Each custom text stands alone: the others keep their defaults.
        ("opt_out", {**ON, "help_text": "Call 555"}, STOP),
        ("help", {**ON, "stop_text": "Bye"}, HELP),
        # A custom text is sent verbatim; {name} is filled in the defaults only.
        ("opt_out", {**ON, "stop_text": "{name}: bye"}, "{name}: bye"),
    ],
)
def test_reply_text(category, auto_replies, text):
    assert replies.reply_text(category, auto_replies, "Acme") == text


@pytest.mark.parametrize("name", ["Acme {x}", "{name}", "100% {0} Café"])
def test_the_name_is_inserted_as_is(name):
    assert replies.reply_text("help", ON, name).startswith(f"{name}: Reply STOP")


# (category, ledger entry's source (None: not opted out), auto replies) -> (action, reply,
# ledger): every row of "Effects", and what a keyword does to an entry added by hand ("api").
@pytest.mark.parametrize(
    ("category", "source", "auto_replies", "outcome"),
    [
        ("opt_out", None, ON, Outcome("opted_out", STOP, "add")),
        ("opt_out", "keyword", ON, Outcome("none", None, "none")),  # one confirmation only
        ("opt_in", "keyword", ON, Outcome("opted_in", START, "remove")),
        ("opt_in", None, ON, Outcome("none", None, "none")),
        ("help", None, ON, Outcome("help", HELP, "none")),
        ("help", "keyword", ON, Outcome("help", HELP, "none")),  # opted out or not
        (None, None, ON, Outcome("none", None, "none")),
        (None, "keyword", ON, Outcome("none", None, "none")),
        # auto_replies.enabled false: the same effects, no reply. Opt-outs still happen.
        ("opt_out", None, OFF, Outcome("opted_out", None, "add")),
        ("opt_out", "keyword", OFF, Outcome("none", None, "none")),
        ("opt_in", "keyword", OFF, Outcome("opted_in", None, "remove")),
        ("opt_in", None, OFF, Outcome("none", None, "none")),
        ("help", None, OFF, Outcome("help", None, "none")),
        ("help", "keyword", OFF, Outcome("help", None, "none")),
        (None, None, OFF, Outcome("none", None, "none")),
        (None, "keyword", OFF, Outcome("none", None, "none")),
        # Over an entry added by hand: a STOP claims it (action none, no reply, as for anyone
        # already opted out), START removes it, HELP is answered, conversation does nothing.
        ("opt_out", "api", ON, Outcome("none", None, "claim")),
        ("opt_out", "api", OFF, Outcome("none", None, "claim")),
        ("opt_out", "api", CUSTOM, Outcome("none", None, "claim")),
        ("opt_in", "api", ON, Outcome("opted_in", START, "remove")),
        ("opt_in", "api", OFF, Outcome("opted_in", None, "remove")),
        ("help", "api", ON, Outcome("help", HELP, "none")),
        (None, "api", ON, Outcome("none", None, "none")),
        # Custom texts go where the defaults would.
        ("opt_out", None, CUSTOM, Outcome("opted_out", "Bye", "add")),
        ("opt_in", "keyword", CUSTOM, Outcome("opted_in", "Hi again", "remove")),
        ("help", "keyword", CUSTOM, Outcome("help", "Call 555", "none")),
        ("opt_out", None, {**CUSTOM, "enabled": False}, Outcome("opted_out", None, "add")),
    ],
)
def test_decide(category, source, auto_replies, outcome):
    assert replies.decide(category, source, auto_replies, "Acme") == outcome


@pytest.mark.parametrize(
    ("text", "body"),
    [
        (None, None),
        (STOP, {"text": STOP, "encoding": "GSM-7", "segments": 1}),
        ("Adiós 👋", {"text": "Adiós 👋", "encoding": "UCS-2", "segments": 1}),
        ("Ç€" * 60, {"text": "Ç€" * 60, "encoding": "GSM-7", "segments": 2}),
    ],
)
def test_reply_body(text, body):
    assert replies.reply_body(text) == body


def test_a_default_reply_with_a_100_character_name_takes_two_segments():
    text = replies.reply_text("opt_out", ON, "N" * 100)
    assert replies.reply_body(text)["segments"] == 2


def test_every_default_fits_one_gsm_segment_with_a_short_name():
    for category in replies.DEFAULT_TEXTS:
        body = replies.reply_body(replies.reply_text(category, ON, "Acme"))
        assert (body["encoding"], body["segments"]) == ("GSM-7", 1)
