"""Phone numbers checked with phonenumbers beyond the spec's E.164 pattern (PRODUCT.md)."""

from __future__ import annotations

import connexion
import pytest
from connexion.resolver import Resolver

from handlers.rules import phone_numbers
from handlers.rules.phone_numbers import InvalidPhoneNumber

PATTERN = phone_numbers.PATTERN_MESSAGE


@pytest.mark.parametrize(
    "number",
    [
        "+15551234567",  # possible though not valid (555): possible is the test
        "+14155550123",
        "+442071234567",
        "+390612345678",  # Italy keeps its leading 0 in E.164
        "+4915112345678",
        "+80012345678",  # international freephone
        "+882123456789",  # international networks
        "+4912345",  # 7 digits, the shortest the pattern allows
        "+492012345678901",  # 15 digits, the longest
    ],
)
def test_possible_numbers_pass(number):
    assert phone_numbers.problem(number) is None
    phone_numbers.check({"phone_number": number})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # The spec's pattern.
        ("15551234567", PATTERN),
        ("+015551234567", PATTERN),
        ("+123456", PATTERN),  # 6 digits
        ("+1800123456789012", PATTERN),  # 16 digits
        ("+1 555 123 4567", PATTERN),
        ("+1-555-123-4567", PATTERN),
        (" +15551234567", PATTERN),
        ("+15551234567\n", PATTERN),  # Python's $ would let this through
        ("+\u0661\u0665\u0665\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667", PATTERN),
        ("+１５５５１２３４５６７", PATTERN),  # noqa: RUF001 - full-width digits are refused
        ("", PATTERN),
        (None, PATTERN),
        (15551234567, PATTERN),
        # Cannot be parsed.
        ("+99912345678", "is not a phone number: it has an unknown country calling code"),
        ("+37912345678", "is not a phone number: it has an unknown country calling code"),
        # Not possible for the country calling code.
        (
            "+1555123456",
            "is not a possible phone number: it is too short for its country calling code",
        ),
        (
            "+1234567",
            "is not a possible phone number: it is too short for its country calling code",
        ),
        (
            "+1555123456789",
            "is not a possible phone number: it is too long for its country calling code",
        ),
        (
            "+71234567890123",
            "is not a possible phone number: it has an impossible length for its country "
            "calling code",
        ),
        (
            "+15550123",
            "is not a possible phone number: it is too short for its country calling code "
            "(a local number without its area code)",
        ),
        # Possible, but not canonical: one contact must be one ledger entry.
        ("+4402071234567", "is not in canonical E.164 form: use +442071234567"),
    ],
)
def test_problem(value, message):
    assert phone_numbers.problem(value) == message


def test_check_names_every_refused_field_at_once():
    numbers = {
        "recipients[0].phone_number": "+14155550123",
        "recipients[3].phone_number": "+1555123456",
        "recipients[4].phone_number": "14155550123",
    }
    with pytest.raises(InvalidPhoneNumber) as raised:
        phone_numbers.check(numbers)
    assert list(raised.value.details) == [
        "recipients[3].phone_number",
        "recipients[4].phone_number",
    ]
    assert "recipients[3].phone_number: is not a possible" in str(raised.value)


def test_check_passes_an_empty_mapping():
    phone_numbers.check({})


def test_the_error_is_not_an_http_error():
    assert InvalidPhoneNumber.__mro__[1] is ValueError


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("+15551234567", "+15551234567"),
        ("%2B15551234567", "+15551234567"),
        ("%2b15551234567", "+15551234567"),
        ("15551234567", "15551234567"),  # left for the check to refuse
        ("", ""),
    ],
)
def test_from_path(value, number):
    assert phone_numbers.from_path(value) == number


def test_to_path():
    assert phone_numbers.to_path("+15551234567") == "%2B15551234567"


async def _echo(phone_number: str) -> dict[str, str]:
    """Answer the path parameter as the handler received it."""
    return {"phone_number": phone_number}


_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "path decoding", "version": "1"},
    "paths": {
        "/opt_outs/{phone_number}": {
            "get": {
                "operationId": "echo",
                "parameters": [
                    {
                        "name": "phone_number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^\\+[1-9][0-9]{6,14}$"},
                    }
                ],
                "responses": {"200": {"description": "the parameter"}},
            }
        }
    },
}


@pytest.mark.parametrize("path", ["/opt_outs/+15551234567", "/opt_outs/%2B15551234567"])
def test_connexion_hands_over_the_decoded_plus(path):
    app = connexion.AsyncApp(__name__)
    app.add_api(_SPEC, resolver=Resolver(function_resolver=lambda _operation_id: _echo))
    answer = app.test_client().get(path)
    assert answer.json() == {"phone_number": "+15551234567"}
