"""Which API-key scopes each v1 operation accepts, read from the spec's ``x-required-scopes``."""

from __future__ import annotations

import re
from typing import Any

from handlers.http.routes import operations, path_pattern


class OperationScopes:
    """(method, path) -> the scopes an operation accepts (any one suffices).

    Connexion hands a security handler the request but not the operation it was routed to, so
    the operation is found again from the request's method and path, against the same spec.
    """

    def __init__(self, spec: dict[str, Any], base_path: str) -> None:
        self._routes: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
            (method, path_pattern(base_path, template), tuple(op.get("x-required-scopes", ())))
            for template, method, op in operations(spec)
        ]

    def accepted(self, method: str, path: str) -> tuple[str, ...]:
        """The scopes accepted for this request (HEAD as GET); empty when none is required."""
        method = "GET" if method == "HEAD" else method
        for route_method, pattern, scopes in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return scopes
        return ()
