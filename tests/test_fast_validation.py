"""The fast body check never accepts what jsonschema (with Connexion's draft 4) refuses."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.spec import OpenAPISpecification
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.http.validation import accepts, collect_errors, compiled
from handlers.specs import load_spec


def _body_schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for name in ("v1.yaml", "dashboard.yaml"):
        spec = OpenAPISpecification(load_spec(name))
        for path, item in spec["paths"].items():
            for method, op in item.items():
                content = (
                    op.get("requestBody", {}).get("content", {}) if isinstance(op, dict) else {}
                )
                for media, body in content.items():
                    # As Connexion hands it to the validator: with the spec's components.
                    schema = {**body["schema"], "components": spec["components"]}
                    found[f"{name} {method.upper()} {path} {media}"] = schema
    return found


def _parameter_schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for name in ("v1.yaml", "dashboard.yaml"):
        spec = OpenAPISpecification(load_spec(name))
        for path, item in spec["paths"].items():
            for op in (o for o in item.values() if isinstance(o, dict)):
                for param in [*item.get("parameters", []), *op.get("parameters", [])]:
                    found[f"{name} {path} {param['in']} {param['name']}"] = param["schema"]
    return found


SCHEMAS = _body_schemas()
PARAMETERS = _parameter_schemas()
PUT_PATH = "/organizations/{organizationId}/contact-protection-settings"

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 29, 30, 31, 364, 365, 366, 720, 721, 2**63, 10**30]),
    st.sampled_from([0.0, 1.0, 30.0, 45.0, 45.5, 365.0, -0.0, 1e300]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "",
            " ",
            "\t\n",
            "a",
            "Acme",
            "21:00",
            "08:00",
            "24:00",
            "7:00",
            "21:60",
            "reject",
            "queue",
            "REJECT",
            "ap@acme.example",
            "not-an-email",
            "a@b",
            "x" * 101,
            "x" * 255,
            "STOP",
            "Reply STOP to opt out",
            "\u00e9t\u00e9",
            "\U0001f600" * 3,
            "{name}",
        ]
    ),
    st.text(max_size=8),
)


EMAILS = [
    "ap@acme.example",
    "\u00fc@example.com",
    "a@x.co",
    "a b@example.com",
    "a@example..com",
    "a@ex_ample.com",
    "a@example.com.",
    "a@[1.2.3.4]",
    "a@-x.com",
    '"a"@x.com',
    "a@x.123",
]


def _near(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values one property accepts, with the subtly wrong ones beside them (1.0, True, ...)."""
    kind = schema.get("type")
    options: list[st.SearchStrategy[Any]] = [SCALARS]
    if schema.get("nullable"):
        options.append(st.none())
    if kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 5)
        options += [st.integers(low - 1, high + 1), st.integers(low, high).map(float)]
    elif kind == "string" and "enum" in schema:
        values = schema["enum"]
        options.append(st.sampled_from([*values, *(v.upper() for v in values)]))
    elif kind == "string" and schema.get("format") == "email":
        options.append(st.sampled_from(EMAILS))
    elif kind == "object" and depth < 3:
        options.append(_objects(schema, depth + 1))
    return st.one_of(*options)


def _objects(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Objects of the schema's own properties, some left out, now and then an unknown one."""
    props = schema.get("properties") or {}
    optional = {name: _near(prop, depth) for name, prop in props.items()}
    optional["unknown"] = SCALARS
    return st.fixed_dictionaries({}, optional=optional)


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Bodies around ``schema``: mostly well-formed objects, sometimes anything at all."""
    return st.one_of(_objects(schema), SCALARS, st.lists(SCALARS, max_size=3))


#: Every request schema with the values to try on it: bodies for bodies, values for parameters.
CASES = {
    **{f"body {name}": (schema, _values) for name, schema in SCHEMAS.items()},
    **{f"parameter {name}": (schema, _near) for name, schema in PARAMETERS.items()},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_check_is_never_laxer_than_jsonschema(name: str) -> None:
    """Fast accept implies jsonschema finds nothing, on values built around the schema."""
    schema, around = CASES[name]
    fast, full = accepts(schema), compiled(schema)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(around(schema))
    def check(value: Any) -> None:
        if fast(value):
            assert collect_errors(full, value) == {}, value

    check()


def test_the_write_bodies_take_the_fast_path() -> None:
    """The bodies the benchmark sends are decided by the fast check, not handed on."""
    patch = SCHEMAS["v1.yaml PATCH /organization application/json"]
    put = SCHEMAS[f"dashboard.yaml PUT {PUT_PATH} application/json"]
    assert accepts(patch)({"message_retention_days": 31})
    assert accepts(put)({"contactProtectionPeriod": 1})
    assert not accepts(patch)({"message_retention_days": 31.0})


@pytest.mark.parametrize("value", ["SM1\n", "SM1\n\n", "\nSM1"])
def test_a_pattern_ends_at_the_end_of_the_string(value: str) -> None:
    """Regression: ``re.search`` lets ``$`` match before a final newline, so ``"SM1\\n"`` passed
    ``^[A-Za-z0-9._:-]{1,100}$`` in both checks and was stored as a message id."""
    schema = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,100}$"}
    assert not accepts(schema)(value)
    assert list(compiled(schema).iter_errors(value))
    assert accepts(schema)("SM1")
