"""Phone numbers: E.164 checked with the ``phonenumbers`` library, with no I/O.

The spec's pattern (``^\\+[1-9][0-9]{6,14}$``) is the first check; then the number must parse
and be a *possible* number (the right length for its country calling code). Possible, not
valid: validity follows numbering-plan metadata that lags new ranges, and refusing a real
contact's STOP because of stale metadata is worse than storing an unallocated number.

Decisions the contract leaves open, each with a test:

- A number phonenumbers can dial only locally (``IS_POSSIBLE_LOCAL_ONLY``: a subscriber number
  without its area code) is refused: it names nobody from abroad, so it is not E.164.
- A number that is possible but not in canonical form is refused, with the canonical form in
  the message. The case is a national trunk prefix kept after the country code
  (``+4402071234567`` for ``+442071234567``): both are possible, and storing both would make
  two ledger entries for one contact, so the STOP recorded under one would not block sends
  to the other.
- The pattern is matched in full (``re.fullmatch``): Python's ``$`` would accept a trailing
  newline that JSON Schema's does not.
- Path parameters: Connexion percent-decodes the path before validation, so a handler gets
  ``+15551234567`` whether the client sent ``+`` or ``%2B`` (a ``+`` in a path is a plus, not a
  space). ``from_path`` also decodes a ``%2B`` that reaches it still encoded, so handlers need
  not care which server they run under.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

E164_PATTERN = r"\+[1-9][0-9]{6,14}"
_E164 = re.compile(E164_PATTERN)

PATTERN_MESSAGE = "must be an E.164 phone number: + and 7 to 15 digits, the first not 0"
_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country calling code",
    ValidationResult.TOO_SHORT: "is too short for its country calling code",
    ValidationResult.TOO_LONG: "is too long for its country calling code",
    ValidationResult.INVALID_LENGTH: "has an impossible length for its country calling code",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: (
        "is too short for its country calling code (a local number without its area code)"
    ),
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: _REASONS[ValidationResult.INVALID_COUNTRY_CODE],
    NumberParseException.TOO_SHORT_NSN: _REASONS[ValidationResult.TOO_SHORT],
    NumberParseException.TOO_LONG: _REASONS[ValidationResult.TOO_LONG],
}


class InvalidPhoneNumber(ValueError):
    """One or more phone numbers refused; ``details`` maps each field path to its message."""

    def __init__(self, details: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in details.items()))
        self.details = details


def problem(value: object) -> str | None:
    """Why ``value`` is not a possible E.164 phone number, or None when it is one."""
    if not isinstance(value, str) or not _E164.fullmatch(value):
        return PATTERN_MESSAGE
    return _number_problem(value)


#: phonenumbers' parse costs ~40 us, most of an inbound message's own work, and a pipeline
#: sees the same numbers again and again (its own ``to`` on every message): the answers for
#: the last 65,536 pattern-valid numbers are kept (a few MiB at most).
@functools.lru_cache(maxsize=65536)
def _number_problem(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except NumberParseException as exc:
        return "is not a phone number: it " + _PARSE_REASONS.get(exc.error_type, "cannot be read")
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        return "is not a possible phone number: it " + _REASONS[reason]
    canonical = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if canonical != value:
        return f"is not in canonical E.164 form: use {canonical}"
    return None


def check(numbers: Mapping[str, object]) -> None:
    """Raise ``InvalidPhoneNumber`` naming every field (``recipients[3].phone_number``) refused."""
    details = {field: message for field, value in numbers.items() if (message := problem(value))}
    if details:
        raise InvalidPhoneNumber(details)


def from_path(value: str) -> str:
    """The number a path parameter names: ``+`` as sent, or from a still-encoded ``%2B``."""
    if value[:3].upper() == "%2B":
        return "+" + value[3:]
    return value


def to_path(number: str) -> str:
    """The path segment for ``number``, with its ``+`` percent-encoded as ``%2B``."""
    return "%2B" + number.removeprefix("+")
