"""Request validators plugged into Connexion's validator_map.

Connexion's stock validators build a new jsonschema validator for every request, stop at the
first error and answer 400 with a problem+json body. These compile each schema once, report
every offending field at once as ``{"dotted.path": "message"}`` (raised as ValidationFailed,
which each surface renders in its own shape), and parse JSON strictly: no NaN/Infinity, no
numbers that overflow to infinity, no duplicate keys, no invalid UTF-8, and no string (key or
value) holding a NUL character or an unpaired UTF-16 surrogate escape such as ``"\\ud800"``.
"""

from __future__ import annotations

import json
import math
import typing as t
from collections.abc import Callable, Iterable

import fastjsonschema
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from email_validator import EmailNotValidError, validate_email
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from handlers.errors import InvalidJson, UnsupportedMediaType, ValidationFailed

FORMAT_CHECKER = FormatChecker()
for _name, _check in Draft4Validator.FORMAT_CHECKER.checkers.items():
    FORMAT_CHECKER.checkers[_name] = _check


@FORMAT_CHECKER.checks("email", raises=EmailNotValidError)
def _is_email(value: object) -> bool:
    """Email syntax per email-validator (no DNS lookups)."""
    if isinstance(value, str):
        validate_email(value, check_deliverability=False)
    return True


_compiled: dict[int, tuple[dict, Draft4Validator]] = {}
_accepts: dict[int, tuple[dict, Callable[[t.Any], bool]]] = {}

#: Keywords that make Connexion's request validator stricter than plain draft 4 (a ``readOnly``
#: property is refused in a request), so a schema using them gets no fast check.
_CONNEXION_ONLY = frozenset({"readOnly", "writeOnly"})


def compiled(schema: dict) -> Draft4Validator:
    """The validator for ``schema``, built once per schema object (Connexion reuses them)."""
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, Draft4RequestValidator(schema, format_checker=FORMAT_CHECKER))
        _compiled[id(schema)] = entry
    return entry[1]


def accepts(schema: dict) -> Callable[[t.Any], bool]:
    """A fast check that, when it answers True, ``compiled(schema)`` finds no error either.

    jsonschema interprets a schema on every call: 20-25 us for a one-field PATCH body, the
    largest part of validating one. fastjsonschema compiles the schema to Python code once,
    and checks the same body in about 1 us. It decides only the common case: True means valid,
    False means "ask jsonschema", which then finds and words every error (or, for what plain
    draft 4 refuses and Connexion allows, such as ``nullable``, accepts the body). To keep True
    trustworthy it runs in draft-04 mode (1.0 is not an integer there either), every format
    goes to the same FORMAT_CHECKER, and schemas where it could be laxer than Connexion's
    validator (``readOnly``/``writeOnly``, non-string ``enum`` values, which it compares with
    ``in`` so that True equals 1) get no fast check at all. tests/test_fast_validation.py holds
    it to that on generated bodies.
    """
    entry = _accepts.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = (schema, _fast_check(schema))
        _accepts[id(schema)] = entry
    return entry[1]


def _fast_check(schema: dict) -> Callable[[t.Any], bool]:
    # Connexion attaches the spec's whole "components" to each body schema so that "$ref"s
    # resolve; without a "$ref" (refused below) nothing in it applies to the body.
    effective = {k: v for k, v in schema.items() if k != "components"}
    if not _fast_checkable(effective):
        return _never
    formats = {name: _format_check(name) for name in FORMAT_CHECKER.checkers}
    check = fastjsonschema.compile({**effective, "$schema": DRAFT4}, formats=formats)

    def fast(instance: t.Any) -> bool:
        try:
            check(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return fast


DRAFT4 = "http://json-schema.org/draft-04/schema#"


def _never(_instance: t.Any) -> bool:
    return False


def _format_check(name: str) -> Callable[[t.Any], bool]:
    return lambda value: FORMAT_CHECKER.conforms(value, name)


def _fast_checkable(node: t.Any) -> bool:
    if isinstance(node, list):
        return all(_fast_checkable(item) for item in node)
    if not isinstance(node, dict):
        return True
    if _CONNEXION_ONLY & node.keys() or "$ref" in node:
        return False
    if "enum" in node and not all(isinstance(v, str) for v in node["enum"]):
        return False
    return all(_fast_checkable(v) for k, v in node.items() if k not in ("enum", "example"))


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


def text_errors(instance: t.Any) -> dict[str, str]:
    """Strings anywhere in ``instance`` that are valid JSON but unsafe to store or send on.

    NUL truncates text in the C-based systems settings flow into (carrier gateways, SMS
    encoders), and a lone surrogate escape is not Unicode at all (SQLite cannot even encode it).
    JSON Schema cannot say "no NUL" for every string at once, so this checks every key and
    value. Iterative, because the parser accepts nesting deeper than Python's recursion limit.
    """
    errors: dict[str, str] = {}
    stack: list[tuple[str, t.Any]] = [("", instance)]
    while stack:
        base, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{base}.{key}" if base else key
                if problem := _unsafe_text(key):
                    errors.setdefault(path, f"field name {problem}")
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((f"{base}.{i}" if base else str(i), v) for i, v in enumerate(value))
        elif isinstance(value, str) and (problem := _unsafe_text(value)):
            errors.setdefault(base or "body", problem)
    return errors


def _unsafe_text(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (unpaired surrogate escape)"
    return None


def _describe_type(expected: t.Any) -> str:
    names = {
        "integer": "an integer",
        "string": "a string",
        "boolean": "a boolean",
        "object": "an object",
        "array": "an array",
        "number": "a number",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(e, e) for e in expected)
    return names.get(expected, str(expected))


def _message(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "type":
        if error.instance is None:
            return "must not be null"
        return f"must be {_describe_type(error.validator_value)}"
    if kind in ("minimum", "maximum") and "minimum" in schema and "maximum" in schema:
        return f"must be between {schema['minimum']} and {schema['maximum']}"
    if kind == "minimum":
        return f"must be at least {schema['minimum']}"
    if kind == "maximum":
        return f"must be at most {schema['maximum']}"
    if kind == "minLength":
        return (
            "must not be empty"
            if error.validator_value == 1
            else (f"must be at least {error.validator_value} characters")
        )
    if kind == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if kind == "enum":
        return "must be one of: " + ", ".join(str(v) for v in error.validator_value)
    if kind == "pattern":
        return schema.get("x-pattern-message") or f"must match {error.validator_value}"
    if kind == "format":
        return (
            f"must be a valid {error.validator_value} address"
            if (error.validator_value == "email")
            else f"must be a valid {error.validator_value}"
        )
    if kind == "not":
        return "must not be blank"
    return error.message


def collect_errors(
    validator: Draft4Validator, instance: t.Any, read_only: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Every schema violation in ``instance`` as ``{"dotted.path": "message"}``."""
    errors: dict[str, str] = {}
    for error in validator.iter_errors(instance):
        base = ".".join(str(p) for p in error.absolute_path)
        for path, message in _explain(error, base, read_only):
            errors.setdefault(path or "body", message)
    return dict(sorted(errors.items()))


def _explain(
    error: ValidationError, base: str, read_only: frozenset[str]
) -> Iterable[tuple[str, str]]:
    join = (lambda name: f"{base}.{name}") if base else (lambda name: name)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        for name in error.instance:
            if name not in known:
                top = not base
                yield join(name), "is read-only" if top and name in read_only else "unknown field"
    elif error.validator == "required":
        for name in error.validator_value:
            if isinstance(error.instance, dict) and name not in error.instance:
                yield join(name), "is required"
    elif error.validator == "type" and not base and error.validator_value == "object":
        yield "body", "request body must be a JSON object"
    else:
        yield base, _message(error)


class BodyValidator(AbstractRequestBodyValidator):
    """JSON body validator: strict parse, compiled schema, every error at once."""

    #: Fields of the resource that a request may not set (reported as "is read-only").
    read_only: frozenset[str] = frozenset()

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Read the whole body, validate it, and replay it to the application."""
        messages = []
        chunks = []
        more = True
        while more:
            message = await receive()
            messages.append(message)
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        if raw.strip() and not any(k.lower() == b"content-type" for k, _ in scope["headers"]):
            # Connexion would guess the operation's first media type; a body must say it is JSON.
            raise UnsupportedMediaType(details="Content-Type is missing; send application/json")
        if not raw.strip():
            if self._required:
                raise InvalidJson("request body is required", details="expected a JSON object")
            body = None
        else:
            body = parse_json(raw)
        if body is not None or not self._nullable:
            errors = (
                {}
                if accepts(self._schema)(body)
                else collect_errors(compiled(self._schema), body, self.read_only)
            )
            for path, message in text_errors(body).items():
                errors.setdefault(path, message)
            if errors:
                raise ValidationFailed(details=errors)
        # Hand the parsed body to the handler so it is not parsed twice.
        ctx = scope.get("orgsettings")
        if ctx is not None:
            ctx["body"] = body
            ctx["body_unread"] = False
        return self._insert_messages(receive, messages=messages), scope


class StrictParameterValidator(ParameterValidator):
    """Query, path and header parameters: every error at once, unknown query names refused."""

    def validate(self, scope: Scope) -> None:
        """Validate every parameter of the request against its compiled schema."""
        errors: dict[str, str] = {}
        sources: dict[str, t.Any] = {"query": {}}
        # Without a query string there is no unknown or invalid query parameter, only missing
        # ones; skipping the parse (and the request object, when no path parameter needs it
        # either) keeps a plain GET from paying for it (7% of one profiled).
        query_string = scope.get("query_string")
        if query_string or self.parameters.get("path"):
            request = ConnexionRequest(scope, uri_parser=self.uri_parser)
        if query_string:
            if self.strict_validation:
                for name in self.validate_query_parameter_list(request, self.security_query_params):
                    errors[name] = "unknown query parameter"
            sources["query"] = request.query_params
        if self.parameters.get("path"):
            sources["path"] = request.path_params
        if self.parameters.get("header"):
            sources["header"] = Headers(scope=scope)
        for location, params in self.parameters.items():
            values = sources.get(location)
            if values is None:
                continue
            for param in params:
                name = param["name"]
                key = name.replace("-", "_") if location == "path" else name
                value = values.get(key)
                if value is None:
                    if param.get("required"):
                        errors[name] = "is required"
                    continue
                schema = param.get("schema", param)
                if accepts(schema)(value):
                    continue
                for error in compiled(schema).iter_errors(value):
                    errors.setdefault(name, _message(error))
        if errors:
            raise ValidationFailed(details=dict(sorted(errors.items())))


def validator_map(read_only: frozenset[str]) -> dict[str, t.Any]:
    """The validator_map to pass to ``add_api``."""
    body = type("SpecBodyValidator", (BodyValidator,), {"read_only": read_only})
    return {"parameter": StrictParameterValidator, "body": MediaTypeDict({"*/*json": body})}
