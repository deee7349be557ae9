"""The route table: which operation of which spec a request is for, built once from both specs.

One table answers every question the layers ask about a request's route: the surface and the
operation (metrics labels), the API-key scopes it accepts (``x-required-scopes``), the methods
its path allows (405 and ``Allow``), and the dashboard's published error sentences for it
(``x-error-sentences``). The outermost middleware matches each request once and keeps the
answer in the request's context; nothing matches it again.

Connexion hands neither a security handler nor an error handler the operation it routed to, so
the table follows Connexion's routing of the same specs: each ``{parameter}`` is one path
segment, a trailing slash is optional, the first spec path that matches wins, and HEAD is GET.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "trace"}
#: Paths served outside both specs (the index, the probes, the metrics): their own label.
SERVICE_PATHS = ("/", "/healthz", "/readyz", "/metrics")


@dataclass(frozen=True, slots=True)
class Route:
    """What the specs say about a request: its surface and operation, and what follows."""

    #: "v1", "dashboard" or "service".
    surface: str
    #: The operationId's function name, a service path, or "unrouted": a metrics label, so the
    #: values stay few whatever is asked.
    operation: str
    #: The API-key scopes the operation accepts (any one suffices); empty: none required.
    scopes: tuple[str, ...] = ()
    #: The Allow value of the spec path the request matched (None outside both specs).
    allow: str | None = None
    #: The dashboard's ``error`` sentence for a body that fails the schema at one of
    #: ``invalid_fields`` (or inside one of them), when the operation publishes one.
    invalid_sentence: str | None = None
    invalid_fields: frozenset[str] = frozenset()
    #: The dashboard's ``error`` sentence for a server fault, when the operation publishes one.
    fault_sentence: str | None = None
    #: The spec's operationId (None outside the specs' operations).
    operation_id: str | None = None

    @property
    def is_dashboard(self) -> bool:
        """True for a request to the dashboard surface (/api)."""
        return self.surface == "dashboard"

    def names_invalid_field(self, fields: Iterable[str]) -> bool:
        """True when a schema error at one of ``fields`` has the operation's own sentence: at a
        field of ``invalid_fields`` or inside one ("body", the body as a whole, has no inside:
        the body's own fields are named without it)."""
        wanted = self.invalid_fields
        return bool(wanted) and any(
            field in wanted or (field.partition(".")[0] in wanted and not field.startswith("body."))
            for field in fields
        )


#: The route of a request outside the specs and the service paths (also outside a request).
UNROUTED = Route("service", "unrouted")


def path_pattern(base: str, template: str) -> str:
    """The regular expression of a spec path under ``base``: each ``{parameter}`` one path
    segment, an optional trailing slash (as Connexion routes it)."""
    return re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template)) + "/?"


@dataclass(frozen=True, slots=True)
class _SpecPath:
    pattern: re.Pattern[str]
    #: METHOD -> route of the operation; HEAD has the GET operation's route.
    routes: dict[str, Route]
    #: The route of a method the path does not have (405), carrying the Allow value.
    other: Route


class RouteTable:
    """(method, path) -> Route, from the specs served under their base paths."""

    def __init__(self, specs: Iterable[tuple[dict[str, Any], str, str]]) -> None:
        """``specs``: (spec, base path, surface name) for each surface."""
        self._paths: list[_SpecPath] = []
        self._unrouted: dict[str, Route] = {}
        for spec, base, surface in specs:
            self._paths += _spec_paths(spec, base, surface)
            self._unrouted[base] = Route(surface, "unrouted")
        # One alternation of every spec path, one group each and none inside, tried in order:
        # the group that matched is the first spec path that matches.
        self._pattern = re.compile("|".join(f"({p.pattern.pattern})" for p in self._paths))
        self._service = {path: Route("service", path) for path in SERVICE_PATHS}

    def match(self, method: str, path: str) -> Route:
        """The route of a request (HEAD as GET)."""
        found = self._pattern.fullmatch(path)
        if found is None:
            return self._outside(path)
        first = found.lastindex - 1
        route = self._paths[first].routes.get(method)
        if route is not None:
            return route
        # The first matching path lacks the method; a later one that has it takes the request.
        for later in self._paths[first + 1 :]:
            if method in later.routes and later.pattern.fullmatch(path):
                return later.routes[method]
        return self._paths[first].other

    def _outside(self, path: str) -> Route:
        """The route of a path no spec path matches: its surface's, or a service path's."""
        slash = path.find("/", 1)
        base = path if slash < 0 else path[:slash]
        return self._unrouted.get(base) or self._service.get(path, UNROUTED)


def _spec_paths(spec: dict[str, Any], base: str, surface: str) -> Iterator[_SpecPath]:
    for template, item in spec["paths"].items():
        methods = {m.upper() for m in item if m in _HTTP_METHODS}
        if "GET" in methods:
            methods.add("HEAD")  # every GET path answers HEAD (Starlette routes it)
        allow = ", ".join(sorted(methods))
        routes = {
            method.upper(): _route(surface, op, allow)
            for method, op in item.items()
            if method in _HTTP_METHODS and isinstance(op, dict)
        }
        if "GET" in routes:
            routes["HEAD"] = routes["GET"]
        yield _SpecPath(
            re.compile(path_pattern(base, template)),
            routes,
            Route(surface, "unrouted", allow=allow),
        )


def _route(surface: str, op: dict[str, Any], allow: str) -> Route:
    sentences = op.get("x-error-sentences", {})
    invalid = sentences.get("400", {})
    return Route(
        surface,
        op["operationId"].rsplit(".", 1)[-1],
        scopes=tuple(op.get("x-required-scopes", ())),
        allow=allow,
        invalid_sentence=invalid.get("error"),
        invalid_fields=frozenset(invalid.get("fields", ())),
        fault_sentence=sentences.get("500", {}).get("error"),
        operation_id=op["operationId"],
    )
