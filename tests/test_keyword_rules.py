"""The pure inbound keyword rule (PRODUCT.md, "Inbound messages: STOP, START, HELP")."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.rules import keywords
from handlers.rules.keywords import Match

OPT_OUT = ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "UNSUB", "CANCEL", "END", "QUIT", "REVOKE"]
OPT_OUT += ["OPTOUT", "OPT OUT", "OPT-OUT"]
LISTS = [(k, "opt_out") for k in OPT_OUT]
LISTS += [("START", "opt_in"), ("UNSTOP", "opt_in"), ("YES", "opt_in")]
LISTS += [("HELP", "help"), ("INFO", "help")]


@pytest.mark.parametrize(("keyword", "category"), LISTS)
def test_every_listed_keyword_alone_matches(keyword, category):
    assert keywords.classify(keyword) == Match(keyword, category)
    assert keywords.classify(keyword.lower()) == Match(keyword, category)


@pytest.mark.parametrize(
    ("body", "keyword", "category"),
    [
        # The cases PRODUCT.md names.
        ("Stop!!", "STOP", "opt_out"),
        ("stop 🙏", "STOP", "opt_out"),
        ("Stop. Thank you", "STOP", "opt_out"),
        ("\uff33\uff34\uff2f\uff30", "STOP", "opt_out"),  # full-width STOP, folded by NFKC
        ("\uff33\uff54\uff4f\uff50\uff01", "STOP", "opt_out"),  # full-width Stop!
        ("opt-out", "OPT-OUT", "opt_out"),
        ("opt out", "OPT OUT", "opt_out"),
        ("STOP    ALL", "STOP ALL", "opt_out"),
        ("  stop \t all \n", "STOP ALL", "opt_out"),
        # Surrounding punctuation, symbols and emoji of any kind.
        ("STOP!", "STOP", "opt_out"),
        ("STOP.", "STOP", "opt_out"),
        ("¡¿STOP?!", "STOP", "opt_out"),
        ('"Stop"', "STOP", "opt_out"),
        ("(stop)", "STOP", "opt_out"),
        ("#STOP", "STOP", "opt_out"),
        ("🛑 STOP 🛑", "STOP", "opt_out"),
        ("stop 👍🏽", "STOP", "opt_out"),  # emoji with a skin-tone modifier
        ("Quit :)", "QUIT", "opt_out"),
        ("unsubscribe...", "UNSUBSCRIBE", "opt_out"),
        ("Cancel!", "CANCEL", "opt_out"),
        ("end.", "END", "opt_out"),
        ("\u00a0STOP\u3000", "STOP", "opt_out"),  # no-break and ideographic spaces
        ("yes", "YES", "opt_in"),
        ("Yes!", "YES", "opt_in"),
        ("Yes 👍", "YES", "opt_in"),
        ("start.", "START", "opt_in"),
        ("Unstop", "UNSTOP", "opt_in"),
        ("HELP?", "HELP", "help"),
        ("info!", "INFO", "help"),
        # The first-word rule: only STOP, STOPALL, UNSUBSCRIBE, REVOKE, OPTOUT, and only with
        # more text after them.
        ("Stop. Thank you", "STOP", "opt_out"),
        ("STOP sending me these", "STOP", "opt_out"),
        ("stop\nthanks", "STOP", "opt_out"),
        ("Stop, please!", "STOP", "opt_out"),
        ("STOP!!! STOP!!!", "STOP", "opt_out"),
        ("Stop 2", "STOP", "opt_out"),
        ("STOPALL now", "STOPALL", "opt_out"),
        ("Unsubscribe me please", "UNSUBSCRIBE", "opt_out"),
        ("revoke: consent withdrawn", "REVOKE", "opt_out"),
        ("optout thanks", "OPTOUT", "opt_out"),
        ("STOP all messages", "STOP", "opt_out"),  # "STOP ALL" is a whole-message keyword only
        # PRODUCT.md's rule, pinned: a leading STOP opts out even in a sentence.
        ("Stop by at 5", "STOP", "opt_out"),
        # Precedence: the whole message wins over the first word.
        ("STOP ALL", "STOP ALL", "opt_out"),
        ("Stop all!", "STOP ALL", "opt_out"),
    ],
)
def test_classify_matches(body, keyword, category):
    assert keywords.classify(body) == Match(keyword, category)


@pytest.mark.parametrize(
    "body",
    [
        # The false positives PRODUCT.md and the issue list.
        "Cancel my 3pm",
        "End of day works",
        "We have got to STOP this bill",
        # Opt-in and help keywords only count alone.
        "Yes please call me",
        "Yes, stop",  # YES is not a first word, and STOP is not first
        "Start the order",
        "Help me with my order",
        "Info about pricing?",
        "Quit calling at 6am?",
        "Unsub me",  # UNSUB is a whole-message keyword only
        "Opt out please",  # two-word keywords are whole-message only
        # A keyword inside another word, or in the middle, is not a keyword.
        "stopping by later",
        "Stopped",
        "nonstop",
        "STOP1",
        "2STOP",
        "Please stop",
        "Don't stop",
        "S T O P",
        "Stop.Thanks",  # one word: words are separated by whitespace
        "Stop-gap measures",  # a hyphenated word is a word
        # Nothing at all.
        "",
        " ",
        " \t\n\u00a0\u3000 ",
        "🙏",
        "🛑🛑🛑",
        "!!!",
        "\u200b",
        # Look-alikes from another script: Cyrillic ES TE O ER.
        "\u0421\u0422\u041e\u0420",
        # A long conversation.
        "Hello, " + "x" * 1593,
    ],
)
def test_classify_finds_no_keyword(body):
    assert keywords.classify(body) == keywords.NO_KEYWORD


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("ST\u200bOP", "STOP"),  # zero-width space inside the word
        ("\ufeffSTOP", "STOP"),  # byte-order mark in front
        ("STOP\u200d", "STOP"),  # zero-width joiner after
        ("STO\u00adP", "STOP"),  # soft hyphen
        ("\u200eSTOP\u200f", "STOP"),  # direction marks
        ("OPT\u2013OUT", "OPT-OUT"),  # en dash
        ("opt\u2011out", "OPT-OUT"),  # non-breaking hyphen
        ("OPT\u2212OUT", "OPT-OUT"),  # minus sign
        ("STOP-ALL", "STOP ALL"),
        ("stop\u2014all", "STOP ALL"),  # em dash
        ("STOP-ALL please", "STOPALL"),
        ("Opt-out of everything", "OPTOUT"),
        ("\u0130NFO", "INFO"),  # Turkish dotted capital I
        ("qu\u0131t", "QUIT"),  # Turkish dotless small i
        ("UNSUBSCR\u0130BE", "UNSUBSCRIBE"),
        ("\U0001d412\U0001d413\U0001d40e\U0001d40f", "STOP"),  # mathematical bold, by NFKC
    ],
)
def test_decisions_on_invisible_characters_dashes_and_turkish_i(body, keyword):
    assert keywords.classify(body).keyword == keyword


def test_a_body_at_the_maximum_length_that_starts_with_stop():
    assert keywords.classify("STOP " + "x" * 1595) == Match("STOP", "opt_out")


@pytest.mark.parametrize(
    ("body", "normalized"),
    [
        ("  Stop!! ", "STOP"),
        ("stop \t\n all", "STOP ALL"),
        ("¿Info?", "INFO"),
        ("\uff28\uff45\uff4c\uff50", "HELP"),
        ("🙏", ""),
        ("Stop. Thank you!", "STOP. THANK YOU"),
    ],
)
def test_normalize(body, normalized):
    assert keywords.normalize(body) == normalized


def _not_alphanumeric(char: str) -> bool:
    """True when NFKC leaves no letter or digit in ``char`` (so it may surround a keyword)."""
    folded = unicodedata.normalize("NFKC", char)
    return not any(c.isalnum() for c in folded) and unicodedata.category(char) != "Cf"


#: Punctuation, symbols, emoji (with modifiers, flags and joiners) and spaces, up to six.
_decoration = st.lists(
    st.characters(categories=("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "So")).filter(
        _not_alphanumeric
    )
    | st.sampled_from(["🙏", "🛑", "👍🏽", "❤️", "🇺🇸", "👨‍👩‍👧"])
    | st.sampled_from([" ", "\t", "\n", "\u00a0", "\u3000"]),
    max_size=6,
).map("".join)
_spaces = st.text(st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u3000"]), min_size=1)


@given(
    keyword_and_category=st.sampled_from(LISTS),
    upper=st.lists(st.booleans(), min_size=16, max_size=16),
    before=_decoration,
    after=_decoration,
    gap=_spaces,
)
def test_classification_ignores_case_decoration_and_spacing(
    keyword_and_category, upper, before, after, gap
):
    keyword, category = keyword_and_category
    cased = "".join(c.upper() if up else c.lower() for c, up in zip(keyword, upper, strict=False))
    body = before + cased.replace(" ", gap) + after
    assert keywords.classify(body) == Match(keyword, category)


@given(word=st.sampled_from(keywords.FIRST_WORD), rest=st.text(min_size=1).filter(str.strip))
def test_a_first_word_keyword_followed_by_any_text_opts_out(word, rest):
    match = keywords.classify(f"{word.lower()} {rest}")
    assert match.category == "opt_out"


def _normalize_every_step(body: str) -> str:
    """PRODUCT.md's normalization with every step taken, whatever the text."""
    text = unicodedata.normalize("NFKC", body)
    text = "".join(
        "-" if unicodedata.category(c) == "Pd" or c == "\u2212" else c
        for c in text
        if unicodedata.category(c) != "Cf"
    )
    alphanumeric = [i for i, c in enumerate(text) if c.isalnum()]
    text = text[alphanumeric[0] : alphanumeric[-1] + 1] if alphanumeric else ""
    text = " ".join(text.split())
    return text.upper().replace("I\u0307", "I").replace("\u0130", "I")


@given(body=st.text(st.characters(max_codepoint=0x7F, exclude_categories=()), max_size=40))
def test_ascii_bodies_normalize_as_if_every_step_were_taken(body):
    # ASCII skips NFKC and the format-character pass; the answer must not change.
    assert keywords.normalize(body) == _normalize_every_step(body)
