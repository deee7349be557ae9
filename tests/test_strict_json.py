"""Strict JSON: the shortcut that skips the NUL / lone-surrogate walk never skips a bad body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.errors import InvalidJson
from handlers.http.strict_json import may_hold_unsafe_text, parse_json, text_errors

#: Every code point, surrogates and NUL included.
ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.text(ANY_CHARACTER, max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _as_sent(value: Any, ensure_ascii: bool) -> bytes:
    """``value`` as a client could send it: escaped to ASCII, or raw UTF-8 (surrogates too)."""
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@given(value=VALUES, ensure_ascii=st.booleans())
def test_a_body_the_shortcut_passes_has_no_unsafe_text(value, ensure_ascii):
    raw = _as_sent(value, ensure_ascii)
    try:
        body = parse_json(raw)
    except InvalidJson:
        return  # refused before the walk: nothing to miss
    if not may_hold_unsafe_text(raw):
        assert text_errors(body) == {}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "Acme\\u0000Evil"}',
        b'{"name\\u0000": "Acme"}',
        b'{"name": "\\ud800"}',
        b'[["\\udfff"]]',
    ],
)
def test_escaped_nul_and_lone_surrogates_are_walked_and_found(raw):
    assert may_hold_unsafe_text(raw)
    assert text_errors(parse_json(raw)) != {}


@pytest.mark.parametrize(
    "raw", [b'{"name": "Acme\x00Evil"}', '{"name": "\ud800"}'.encode("utf-8", "surrogatepass")]
)
def test_raw_nul_and_encoded_surrogates_never_parse(raw):
    with pytest.raises(InvalidJson):
        parse_json(raw)
