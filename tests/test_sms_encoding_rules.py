"""GSM-7 / UCS-2 detection and segment counting (PRODUCT.md, the inbound reply's encoding)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.rules import sms_encoding
from handlers.rules.sms_encoding import SmsSize

EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, two UTF-16 code units
KANA = "\u3042"  # inside the BMP: one UTF-16 code unit, not GSM


def test_the_tables_have_the_sizes_of_ts_23_038():
    assert len(sms_encoding.GSM7_BASIC) == 127  # 128 codes less the escape
    assert len(sms_encoding.GSM7_EXTENSION) == 10
    assert not sms_encoding.GSM7_BASIC & sms_encoding.GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("", "GSM-7"),
        ("Reply STOP to unsubscribe.", "GSM-7"),
        ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "GSM-7"),
        ("¡¿ÄÖÑÜ§äöñüà¤", "GSM-7"),
        ("Ç", "GSM-7"),  # 0x09 is capital C cedilla
        ("ç", "UCS-2"),  # small c cedilla is not in the basic set
        ("€", "GSM-7"),  # extension table
        ("^{}\\[~]|\f", "GSM-7"),
        ("`", "UCS-2"),  # the grave accent is in neither table
        ("á", "UCS-2"),
        ("È", "UCS-2"),
        ("\t", "UCS-2"),
        ("\u00a0", "UCS-2"),  # no-break space
        ("\u2019", "UCS-2"),  # a typographic apostrophe, the usual surprise
        (KANA, "UCS-2"),
        (EMOJI, "UCS-2"),
        ("Stop " + EMOJI, "UCS-2"),
    ],
)
def test_encoding(text, encoding):
    assert sms_encoding.encoding(text) == encoding


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("", SmsSize("GSM-7", 0, 1)),
        ("a", SmsSize("GSM-7", 1, 1)),
        ("a" * 160, SmsSize("GSM-7", 160, 1)),
        ("a" * 161, SmsSize("GSM-7", 161, 2)),
        ("a" * 306, SmsSize("GSM-7", 306, 2)),
        ("a" * 307, SmsSize("GSM-7", 307, 3)),
        ("a" * 459, SmsSize("GSM-7", 459, 3)),
        ("a" * 460, SmsSize("GSM-7", 460, 4)),
        # An extension character counts twice.
        ("€" * 80, SmsSize("GSM-7", 160, 1)),
        ("€" * 81, SmsSize("GSM-7", 162, 2)),
        ("a" * 158 + "€", SmsSize("GSM-7", 160, 1)),
        ("a" * 159 + "€", SmsSize("GSM-7", 161, 2)),
        # An escape pair is never split: at 152 + 2 the euro moves to segment two.
        ("a" * 151 + "€" + "a" * 153, SmsSize("GSM-7", 306, 2)),
        ("a" * 152 + "€" + "a" * 152, SmsSize("GSM-7", 306, 3)),
        # UCS-2, counted in UTF-16 code units.
        ("ç" * 70, SmsSize("UCS-2", 70, 1)),
        ("ç" * 71, SmsSize("UCS-2", 71, 2)),
        (KANA * 134, SmsSize("UCS-2", 134, 2)),
        (KANA * 135, SmsSize("UCS-2", 135, 3)),
        ("a" * 69 + "ç", SmsSize("UCS-2", 70, 1)),  # one non-GSM character makes it all UCS-2
        ("a" * 160 + "ç", SmsSize("UCS-2", 161, 3)),
        (EMOJI, SmsSize("UCS-2", 2, 1)),
        (EMOJI * 35, SmsSize("UCS-2", 70, 1)),
        (EMOJI * 36, SmsSize("UCS-2", 72, 2)),
        ("a" * 69 + EMOJI, SmsSize("UCS-2", 71, 2)),
        # A surrogate pair is never split: at 66 + 2 the emoji moves to segment two.
        (KANA * 65 + EMOJI + KANA * 67, SmsSize("UCS-2", 134, 2)),
        (KANA * 66 + EMOJI + KANA * 66, SmsSize("UCS-2", 134, 3)),
    ],
)
def test_measure(text, size):
    assert sms_encoding.measure(text) == size
    assert sms_encoding.segments(text) == size.segments


_gsm = st.text(st.sampled_from(sorted(sms_encoding.GSM7_BASIC | sms_encoding.GSM7_EXTENSION)))


@given(text=_gsm)
def test_gsm_segments_are_at_least_the_plain_division(text):
    size = sms_encoding.measure(text)
    assert size.encoding == "GSM-7"
    plain = 1 if size.units <= 160 else -(-size.units // 153)
    assert plain <= size.segments <= max(plain, -(-size.units // 152))


@given(text=st.text())
def test_ucs2_units_are_utf16_code_units(text):
    size = sms_encoding.measure(text)
    if size.encoding == "UCS-2":
        assert size.units == len(text.encode("utf-16-le")) // 2
