"""Which methods each spec path accepts, for 405 answers and their Allow header."""

from __future__ import annotations

import re
from typing import Any

_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "trace"}


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
                pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template))
                self._routes.append((re.compile(pattern + "/?"), ", ".join(methods)))

    def __call__(self, path: str) -> str | None:
        """The Allow value for ``path``, or None when no spec path matches it."""
        for pattern, allow in self._routes:
            if pattern.fullmatch(path):
                return allow
        return None
