"""Strict JSON for request bodies: what the standard parser accepts but a settings API must not.

No NaN/Infinity, no numbers that overflow to infinity, no duplicate keys, no invalid UTF-8, and
(checked after parsing) no string, key or value, holding a NUL character or an unpaired UTF-16
surrogate escape such as ``"\\ud800"``.
"""

from __future__ import annotations

import json
import math
import typing as t

from handlers.errors import InvalidJson


class _Rejected(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    result: dict[str, t.Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Rejected(f"duplicate key {key!r}")
        result[key] = value
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"number {text} is out of range")
    return value


def _constant(name: str) -> t.NoReturn:
    raise _Rejected(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> t.Any:
    """Parse a request body strictly, raising InvalidJson with a reason a client can act on."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson(details="request body is not valid UTF-8") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_finite,
            parse_constant=_constant,
        )
    except _Rejected as exc:
        raise InvalidJson(details=str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(details=f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidJson(details="request body is nested too deeply") from None
    except ValueError:
        # Python refuses integers of over 4300 digits (sys.get_int_max_str_digits()).
        raise InvalidJson(details="a number in the request body has too many digits") from None


def may_hold_unsafe_text(raw: bytes) -> bool:
    """False when no string parsed from the JSON text ``raw`` can hold NUL or a lone surrogate.

    Both reach a string only through a ``\\u`` escape: the parser refuses raw control
    characters inside strings, and the UTF-8 decoder refuses an encoded surrogate. So a body
    without ``\\u`` anywhere needs no ``text_errors`` walk.
    """
    return b"\\u" in raw


def text_errors(instance: t.Any) -> dict[str, str]:
    """Strings anywhere in ``instance`` that are valid JSON but unsafe to store or send on.

    NUL truncates text in the C-based systems settings flow into (carrier gateways, SMS
    encoders), and a lone surrogate escape is not Unicode at all (SQLite cannot even encode it).
    JSON Schema cannot say "no NUL" for every string at once, so this checks every key and
    value. Iterative, because the parser accepts nesting deeper than Python's recursion limit.
    """
    errors: dict[str, str] = {}
    stack: list[tuple[str, t.Any]] = [("", instance)]
    while stack and len(errors) <= MAX_REPORTED:
        base, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                path = _join(base, key)
                if problem := _unsafe_text(key):
                    errors.setdefault(path, f"field name {problem}")
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((_cut(f"{base}[{i}]"), v) for i, v in enumerate(value))
        elif isinstance(value, str) and (problem := _unsafe_text(value)):
            errors.setdefault(base or "body", problem)
    return errors


# Both bounds keep the answer small whatever the body: a 64 KiB body with a 30,000-character
# field name above thousands of bad children would otherwise make tens of megabytes of paths
# (and of error body).
#: Error paths are cut to this many characters.
MAX_PATH = 200
#: The search stops once more errors than this were found.
MAX_REPORTED = 50


def _join(base: str, key: str) -> str:
    return _cut(f"{base}.{key}" if base else key)


def _cut(path: str) -> str:
    """``path`` cut to MAX_PATH characters (array items are ``name[3]``, as in validation)."""
    return path if len(path) <= MAX_PATH else path[: MAX_PATH - 1] + "\u2026"


def _unsafe_text(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (unpaired surrogate escape)"
    return None
