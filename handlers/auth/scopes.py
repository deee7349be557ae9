"""Which API-key scopes each v1 operation accepts, read from the spec's ``x-required-scopes``."""

from __future__ import annotations

import re
from typing import Any

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "trace")


class OperationScopes:
    """(method, path) -> the scopes an operation accepts (any one suffices).

    Connexion hands a security handler the request but not the operation it was routed to, so
    the operation is found again from the request's method and path, against the same spec.
    """

    def __init__(self, spec: dict[str, Any], base_path: str) -> None:
        self._routes: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = []
        for template, item in spec["paths"].items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base_path + template))
            for method in _HTTP_METHODS:
                op = item.get(method)
                if isinstance(op, dict):
                    scopes = tuple(op.get("x-required-scopes", ()))
                    self._routes.append((method.upper(), re.compile(pattern + "/?"), scopes))

    def accepted(self, method: str, path: str) -> tuple[str, ...]:
        """The scopes accepted for this request (HEAD as GET); empty when none is required."""
        method = "GET" if method == "HEAD" else method
        for route_method, pattern, scopes in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return scopes
        return ()
