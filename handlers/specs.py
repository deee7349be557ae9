"""The two specs in openapi/, parsed once per process: the source of truth the layers read.

The factory hands them to Connexion (which works on its own copy) and to the route table; the
operations read what a schema says (the developer API's field order). Nothing changes them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"


@functools.cache
def load_spec(name: str) -> dict[str, Any]:
    """One spec file from openapi/, parsed (once; callers must not change it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster start-up
    with (SPEC_DIR / name).open() as handle:
        return yaml.load(handle, Loader=loader)


def schema_properties(spec: dict[str, Any], schema: str) -> dict[str, Any]:
    """The properties of a named schema in ``components``, in the spec's order."""
    return spec.get("components", {}).get("schemas", {}).get(schema, {}).get("properties", {})


def read_only_fields(spec: dict[str, Any], schema: str) -> frozenset[str]:
    """Properties the named schema marks ``readOnly``: a request naming one is told so."""
    return frozenset(
        name for name, prop in schema_properties(spec, schema).items() if prop.get("readOnly")
    )
