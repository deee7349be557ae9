"""Request validators plugged into Connexion's validator_map.

Connexion's stock validators build a new jsonschema validator for every request, stop at the
first error and answer 400 with a problem+json body. These compile each schema once, report
every offending field at once as ``{"dotted.path": "message"}`` (raised as ValidationFailed,
which each surface renders in its own shape), and parse JSON strictly: no NaN/Infinity, no
numbers that overflow to infinity, no duplicate keys, no invalid UTF-8, and no string (key or
value) holding a NUL character or an unpaired UTF-16 surrogate escape such as ``"\\ud800"``.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Iterable

import fastjsonschema
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from email_validator import EmailNotValidError, validate_email
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Message, Receive, Scope

from handlers.errors import InvalidJson, UnsupportedMediaType, ValidationFailed
from handlers.http import request_context
from handlers.http.strict_json import may_hold_unsafe_text, parse_json, text_errors

FORMAT_CHECKER = FormatChecker()
for _name, _check in Draft4Validator.FORMAT_CHECKER.checkers.items():
    FORMAT_CHECKER.checkers[_name] = _check


@FORMAT_CHECKER.checks("email", raises=EmailNotValidError)
def _is_email(value: object) -> bool:
    """Email syntax per email-validator (no DNS lookups)."""
    if isinstance(value, str):
        validate_email(value, check_deliverability=False)
    return True


#: Keywords that make Connexion's request validator stricter than plain draft 4 (a ``readOnly``
#: property is refused in a request), so a schema using them gets no fast check.
_CONNEXION_ONLY = frozenset({"readOnly", "writeOnly"})


def ecma_patterns(node: t.Any) -> t.Any:
    """A copy of a schema whose ``pattern``s end as JSON Schema's do.

    JSON Schema reads a pattern as an ECMA-262 regular expression, where a final ``$`` is the
    end of the string. jsonschema and fastjsonschema run it with Python's ``re.search``, where
    ``$`` also matches before a final newline, so ``"SM1\n"`` would pass ``^[A-Za-z0-9]+$``.
    The copy ends each such pattern with ``\\Z`` (the end of the string only) instead.
    """
    if isinstance(node, list):
        return [ecma_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    copied = {key: ecma_patterns(value) for key, value in node.items()}
    pattern = node.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
        copied["pattern"] = pattern[:-1] + "\\Z"
    return copied


def compiled(schema: dict) -> Draft4Validator:
    """The validator for ``schema`` (what Connexion's own request validator checks, with
    ``ecma_patterns``)."""
    return Draft4RequestValidator(ecma_patterns(schema), format_checker=FORMAT_CHECKER)


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
    # Connexion attaches the spec's whole "components" to each body schema so that "$ref"s
    # resolve; without a "$ref" (refused below) nothing in it applies to the body.
    effective = ecma_patterns({k: v for k, v in schema.items() if k != "components"})
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


class SchemaChecks:
    """One app's checks, each built once per schema object (Connexion builds its validators
    per request, but with the same schema objects each time); they go when the app goes."""

    def __init__(self) -> None:
        self._checks: dict[int, tuple[dict, Callable[[t.Any], bool], Draft4Validator]] = {}

    def of(self, schema: dict) -> tuple[Callable[[t.Any], bool], Draft4Validator]:
        """``accepts(schema)`` and ``compiled(schema)``, built on the first request."""
        entry = self._checks.get(id(schema))
        if entry is None or entry[0] is not schema:
            entry = (schema, accepts(schema), compiled(schema))
            self._checks[id(schema)] = entry
        return entry[1], entry[2]


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
    if kind in ("minItems", "maxItems"):
        count = error.validator_value
        least = "least" if kind == "minItems" else "most"
        return f"must have at {least} {count} item{'' if count == 1 else 's'}"
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


def field_path(parts: Iterable[str | int]) -> str:
    """A field's path as details name it: dotted names, array items by index
    (``recipients[3].phone_number``)."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def collect_errors(
    validator: Draft4Validator, instance: t.Any, read_only: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Every schema violation in ``instance`` as ``{"dotted.path": "message"}``."""
    errors: dict[str, str] = {}
    for error in validator.iter_errors(instance):
        base = field_path(error.absolute_path)
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
    """JSON body validator: strict parse, compiled schema, every error at once.

    Connexion builds one per request with the operation's body schema; the whole body is read,
    checked, and replayed unchanged to the handler, which Connexion passes the same bytes
    parsed (``body``).
    """

    #: Fields of the resource that a request may not set (reported as "is read-only").
    read_only: frozenset[str] = frozenset()
    #: The app's compiled checks (``validator_map`` gives each app its own).
    checks: SchemaChecks

    def __init__(
        self,
        *,
        schema: dict,
        required: bool = False,
        nullable: bool = False,
        encoding: str,
        strict_validation: bool,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(
            schema=schema,
            required=required,
            nullable=nullable,
            encoding=encoding,
            strict_validation=strict_validation,
        )
        self.schema = schema
        self.required = required
        self.nullable = nullable

    def checked_part(self, body: t.Any) -> t.Any:
        """The part of ``body`` whose text must be safe: all of it, except the unknown fields a
        schema open to them (the dashboard's ``additionalProperties: true``) ignores."""
        if (
            isinstance(body, dict)
            and self.schema.get("type") == "object"
            and self.schema.get("additionalProperties", True) is not False
        ):
            known = self.schema.get("properties", {})
            return {name: value for name, value in body.items() if name in known}
        return body

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
        if raw.strip() and "content-type" not in Headers(scope=scope):
            # Connexion would guess the operation's first media type; a body must say it is JSON.
            raise UnsupportedMediaType(details="Content-Type is missing; send application/json")
        if not raw.strip():
            if self.required:
                raise InvalidJson("request body is required", details="expected a JSON object")
            # An optional body left out: nothing to validate (the handler gets no body).
            return replay(messages, receive), scope
        body = parse_json(raw)
        if body is not None or not self.nullable:
            fast, full = self.checks.of(self.schema)
            errors = {} if fast(body) else collect_errors(full, body, self.read_only)
            if may_hold_unsafe_text(raw):
                for path, message in text_errors(self.checked_part(body)).items():
                    errors.setdefault(path, message)
            if errors:
                raise ValidationFailed(details=errors)
        request_context.current().body = body
        return replay(messages, receive), scope


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive channel that gives ``messages`` again, then goes on with ``receive``."""
    pending = iter(messages)

    async def receive_again() -> Message:
        for message in pending:
            return message
        return await receive()

    return receive_again


class StrictParameterValidator(ParameterValidator):
    """Path, query and header parameters: every error at once, unknown and repeated query
    parameters refused.

    The values checked are the ones Connexion passes the handler: both come from the
    operation's URI parser. A query parameter that is not an array may appear once; a repeat
    (``?limit=100&limit=5``) is refused rather than resolved, so no layer can read a different
    value than the one validated.
    """

    #: The app's compiled checks (``validator_map`` gives each app its own).
    checks: SchemaChecks

    def validate(self, scope: Scope) -> None:
        """Validate every parameter of the request against its compiled schema."""
        errors: dict[str, str] = {}
        request = ConnexionRequest(scope, uri_parser=self.uri_parser)
        sources: dict[str, t.Any] = {"query": {}, "path": request.path_params}
        if scope.get("query_string"):
            raw = QueryParams(scope["query_string"])
            if self.strict_validation:
                known = {p["name"] for p in self.parameters.get("query", [])}
                for name in raw:
                    if name not in known and name not in self.security_query_params:
                        errors[name] = "unknown query parameter"
            for param in self.parameters.get("query", []):
                schema = param.get("schema", param)
                if schema.get("type") != "array" and len(raw.getlist(param["name"])) > 1:
                    errors[param["name"]] = "must not be repeated"
            sources["query"] = request.query_params
        if self.parameters.get("header"):
            sources["header"] = Headers(scope=scope)
        for location, params in self.parameters.items():
            values = sources.get(location)
            if values is None:
                continue
            for param in params:
                name = param["name"]
                if name in errors:
                    continue
                key = name.replace("-", "_") if location == "path" else name
                value = values.get(key)
                if value is None:
                    if param.get("required"):
                        errors[name] = "is required"
                    continue
                fast, full = self.checks.of(param.get("schema", param))
                if fast(value):
                    continue
                for error in full.iter_errors(value):
                    errors.setdefault(name, _message(error))
        if errors:
            raise ValidationFailed(details=dict(sorted(errors.items())))
        info = request_context.current()
        info.path_params = request.path_params
        info.query_params = sources["query"]


def validator_map(read_only: frozenset[str], checks: SchemaChecks) -> dict[str, t.Any]:
    """The validator_map to pass to ``add_api``: Connexion builds a validator per request
    from the classes, which carry the API's read-only fields and the app's checks."""
    body = type("SpecBodyValidator", (BodyValidator,), {"read_only": read_only, "checks": checks})
    parameter = type("SpecParameterValidator", (StrictParameterValidator,), {"checks": checks})
    return {"parameter": parameter, "body": MediaTypeDict({"*/*json": body})}
