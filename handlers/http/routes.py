"""Which methods each spec path accepts, for 405 answers and their Allow header."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "trace"}


def path_pattern(base: str, template: str) -> re.Pattern[str]:
    """The pattern of a spec path under ``base``: each ``{parameter}`` one path segment, an
    optional trailing slash (as Connexion routes it)."""
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template)) + "/?")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation of a spec as (path template, METHOD, operation object)."""
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method in _HTTP_METHODS and isinstance(op, dict):
                yield template, method.upper(), op


class AllowedMethods:
    """path -> the Allow value of the spec path it matches (None outside both specs)."""

    def __init__(self, specs: list[tuple[dict[str, Any], str]]) -> None:
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for spec, base in specs:
            for template, item in spec["paths"].items():
                methods = {m.upper() for m in item if m in _HTTP_METHODS}
                if "GET" in methods:
                    methods.add("HEAD")  # every GET path answers HEAD (Starlette routes it)
                methods = sorted(methods)
                self._routes.append((path_pattern(base, template), ", ".join(methods)))

    def __call__(self, path: str) -> str | None:
        """The Allow value for ``path``, or None when no spec path matches it."""
        for pattern, allow in self._routes:
            if pattern.fullmatch(path):
                return allow
        return None


class OperationNames:
    """(method, path) -> (surface, operation) for metrics labels: the operationId's function
    name for a spec operation, else a fixed word, so label values stay few whatever is asked."""

    def __init__(self, specs: list[tuple[dict[str, Any], str, str]]) -> None:
        self._routes: list[tuple[str, re.Pattern[str], str, str]] = []
        for spec, base, surface in specs:
            for template, method, op in operations(spec):
                name = op["operationId"].rsplit(".", 1)[-1]
                self._routes.append((method, path_pattern(base, template), surface, name))

    def __call__(self, method: str, path: str) -> tuple[str, str]:
        """The surface and operation of a request (HEAD as GET)."""
        method = "GET" if method == "HEAD" else method
        for route_method, pattern, surface, name in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return surface, name
        if path.startswith("/v1/") or path == "/v1":
            return "v1", "unrouted"
        if path.startswith("/api/") or path == "/api":
            return "dashboard", "unrouted"
        return "service", path if path in _SERVICE_PATHS else "unrouted"


_SERVICE_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})
