"""The specs as documentation: every example validates, every element is described."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from spec_tools import SPECS, Example, body_examples, errors, follow, load, operations, pointer

BODY_EXAMPLES = [ex for name in SPECS for ex in body_examples(name)]


@pytest.mark.parametrize("example", BODY_EXAMPLES, ids=lambda ex: ex.id)
def test_body_example_validates_against_its_schema(example: Example) -> None:
    """A documented request or response body is valid for the schema it is documented under."""
    problems = errors(
        example.spec, example.schema_ref, example.value, request=example.status is None
    )
    assert not problems, problems


@pytest.mark.parametrize("name", SPECS)
def test_every_body_has_an_example(name: str) -> None:
    """Every request body and every response body, per media type, carries an example."""
    spec, missing, seen = load(name), [], 0
    for path, method, op in operations(spec):
        bodies = [("request", op.get("requestBody")), *op["responses"].items()]
        for where, body in bodies:
            if body is None:
                continue
            body, _ = follow(spec, body, "")
            for media_type, media in body.get("content", {}).items():
                seen += 1
                if "example" not in media and not media.get("examples"):
                    missing.append(f"{method.upper()} {path} {where} {media_type}")
    assert seen > 10 and not missing, missing


def schema_examples(spec: dict[str, Any], node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(schema pointer, example) for ``node`` and every schema nested in it."""
    if not isinstance(node, dict) or "$ref" in node:
        return
    if "example" in node:
        yield where, node["example"]
    for key, child in node.get("properties", {}).items():
        yield from schema_examples(spec, child, f"{where}/properties/{pointer(key)[2:]}")
    for key in ("items", "additionalProperties", "not"):
        yield from schema_examples(spec, node.get(key), f"{where}/{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for index, child in enumerate(node.get(key, [])):
            yield from schema_examples(spec, child, f"{where}/{key}/{index}")


def all_schema_examples() -> Iterator[tuple[str, str, Any]]:
    """Examples on component schemas, parameters and headers, with their schema pointers."""
    for name in SPECS:
        spec = load(name)
        components = spec["components"]
        for key, schema in components.get("schemas", {}).items():
            for where, value in schema_examples(
                spec, schema, pointer("components", "schemas", key)
            ):
                yield name, where, value
        for kind in ("parameters", "headers"):
            for key, item in components.get(kind, {}).items():
                base = pointer("components", kind, key)
                if "example" in item:
                    yield name, f"{base}/schema", item["example"]
                for where, value in schema_examples(spec, item["schema"], f"{base}/schema"):
                    yield name, where, value


SCHEMA_EXAMPLES = list(all_schema_examples())


@pytest.mark.parametrize(
    ("name", "schema_ref", "value"),
    SCHEMA_EXAMPLES,
    ids=[f"{n} {w}" for n, w, _ in SCHEMA_EXAMPLES],
)
def test_schema_example_validates(name: str, schema_ref: str, value: Any) -> None:
    """An `example` on a schema, parameter or header is valid for that schema."""
    problems = errors(name, schema_ref, value, request=False)
    assert not problems, problems


def undescribed(spec: dict[str, Any], node: Any, where: str) -> Iterator[str]:
    """Pointers of ``node`` and nested schemas or properties that have no description."""
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        target, ref = follow(spec, node, where)
        if not target.get("description"):
            yield f"{where} -> {ref}"
        return
    if not node.get("description"):
        yield where
    for key, child in node.get("properties", {}).items():
        yield from undescribed(spec, child, f"{where}/properties/{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from undescribed(spec, node[key], f"{where}/{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        # Members of a composition are described by the composed schema itself.
        for index, child in enumerate(node.get(key, [])):
            if "$ref" not in child:
                yield from undescribed(spec, child, f"{where}/{key}/{index}")


@pytest.mark.parametrize("name", SPECS)
def test_every_element_is_described(name: str) -> None:
    """Every operation, parameter, request body, response, schema and property is described."""
    spec, missing = load(name), []
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        missing += [f"{where} {k}" for k in ("summary", "description") if not op.get(k)]
        parameters = spec["paths"][path].get("parameters", []) + op.get("parameters", [])
        for parameter in parameters:
            parameter, _ = follow(spec, parameter, where)
            if not parameter.get("description"):
                missing.append(f"{where} parameter {parameter['name']}")
        if "requestBody" in op and not follow(spec, op["requestBody"], "")[0].get("description"):
            missing.append(f"{where} requestBody")
        for status, response in op["responses"].items():
            response, _ = follow(spec, response, "")
            if not response.get("description"):
                missing.append(f"{where} {status}")
    components = spec["components"]
    for key, schema in components.get("schemas", {}).items():
        missing += undescribed(spec, schema, f"schemas/{key}")
    for kind in ("parameters", "headers", "securitySchemes"):
        missing += [
            f"{kind}/{k}" for k, v in components.get(kind, {}).items() if not v.get("description")
        ]
    assert not missing, missing
