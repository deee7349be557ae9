"""Read the OpenAPI specs as data: resolve $refs, list documented examples, validate values.

Validation uses OpenAPI 3.0 semantics (``nullable``, ``readOnly``/``writeOnly``, OAS formats)
through openapi-schema-validator, with every ``$ref`` resolved against the spec itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    oas30_format_checker,
)
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parent.parent
SPECS = {"v1": ROOT / "openapi" / "v1.yaml", "dashboard": ROOT / "openapi" / "dashboard.yaml"}
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
BASE = "urn:orgsettings-spec"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed spec ``v1`` or ``dashboard``."""
    return yaml.safe_load(SPECS[name].read_text())


def pointer(*parts: str) -> str:
    """A JSON pointer built from raw path segments (escaping ``~`` and ``/``)."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def at(spec: dict[str, Any], ref: str) -> Any:
    """The node a local ``#/...`` reference points to."""
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def follow(spec: dict[str, Any], node: Any, where: str) -> tuple[Any, str]:
    """Follow ``$ref`` chains; returns the node and its pointer."""
    while isinstance(node, dict) and "$ref" in node:
        where = node["$ref"]
        node = at(spec, where)
    return node, where


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) in the spec."""
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


@dataclass(frozen=True)
class Example:
    """One documented body example, where its schema is, and the request or response it is."""

    spec: str
    path: str
    method: str
    status: str | None  # None for a request body example
    media_type: str
    name: str
    value: Any
    schema_ref: str

    @property
    def id(self) -> str:
        """A readable pytest id."""
        where = "request" if self.status is None else self.status
        return (
            f"{self.spec} {self.method.upper()} {self.path} {where} {self.media_type} {self.name}"
        )


def media_examples(content: dict[str, Any], base: str) -> Iterator[tuple[str, str, Any, str]]:
    """(media type, example name, value, schema pointer) for each example of a content map."""
    for media_type, media in content.items():
        schema_ref = f"{base}/{pointer('content', media_type)[2:]}/schema"
        if "example" in media:
            yield media_type, "example", media["example"], schema_ref
        for name, example in media.get("examples", {}).items():
            yield media_type, name, example, schema_ref


def body_examples(name: str) -> Iterator[Example]:
    """Every request and response body example documented in spec ``name``."""
    spec = load(name)
    for path, method, op in operations(spec):
        op_ref = pointer("paths", path, method)
        if "requestBody" in op:
            body, base = follow(spec, op["requestBody"], f"{op_ref}/requestBody")
            for media_type, ex_name, value, schema_ref in media_examples(body["content"], base):
                value, _ = follow(spec, value, "")
                value = value["value"] if ex_name != "example" else value
                yield Example(name, path, method, None, media_type, ex_name, value, schema_ref)
        for status, response in op["responses"].items():
            response, base = follow(spec, response, f"{op_ref}/responses/{status}")
            for media_type, ex_name, value, schema_ref in media_examples(
                response.get("content", {}), base
            ):
                value, _ = follow(spec, value, "")
                value = value["value"] if ex_name != "example" else value
                yield Example(name, path, method, status, media_type, ex_name, value, schema_ref)


@cache
def registry(name: str) -> Registry:
    """A registry holding the whole spec, so every local $ref in it resolves."""
    resource = Resource.from_contents(load(name), default_specification=DRAFT4)
    return Registry().with_resource(BASE, resource)


def errors(name: str, schema_ref: str, value: Any, *, request: bool) -> list[str]:
    """Why ``value`` does not validate against the schema at ``schema_ref`` (empty if it does).

    Request bodies are checked as a client writes them (readOnly properties refused), response
    bodies as a client reads them (writeOnly properties refused).
    """
    validator_class = OAS30WriteValidator if request else OAS30ReadValidator
    validator = validator_class(
        {"$ref": BASE + schema_ref}, registry=registry(name), format_checker=oas30_format_checker
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
