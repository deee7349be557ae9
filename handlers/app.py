"""The app factory: one Connexion FlaskApp serving both surfaces over one store."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import connexion
import yaml
from connexion.exceptions import ProblemException
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

from handlers import errors, health, operations
from handlers.config import Config
from handlers.dispatch import OperationDispatcher
from handlers.log_format import JsonLineFormatter
from handlers.middleware import RequestContext
from handlers.request_validation import CachedRequestValidationMiddleware
from handlers.routing import CachedRoutingMiddleware
from handlers.security import SECURITY_MAP
from handlers.swagger_ui import DocsOnlySwaggerUIMiddleware
from handlers.validation import validator_map
from handlers.wsgi_bridge import BufferedWSGIBridge
from storage import Store

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
SWITCH_INTERVAL_SECONDS = 0.0005
SURFACES = (("v1.yaml", "/v1"), ("dashboard.yaml", "/api"))


@dataclass
class Services:
    """What handlers and auth functions reach through the request context."""

    config: Config
    store: Store
    v1_scopes: dict[str, tuple[str, ...]]
    jwt: Any = None
    key_touched: dict[str, float] = field(default_factory=dict)


def load_spec(name: str) -> dict[str, Any]:
    """Parse one spec file from openapi/."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster start-up
    with (SPEC_DIR / name).open() as handle:
        return yaml.load(handle, Loader=loader)


def required_scopes(spec: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """operationId -> the scopes (any one suffices) named by ``x-required-scopes``."""
    scopes: dict[str, tuple[str, ...]] = {}
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                scopes[op["operationId"]] = tuple(op.get("x-required-scopes", ()))
    return scopes


def read_only_fields(spec: dict[str, Any], schema: str) -> frozenset[str]:
    """Properties the named schema marks ``readOnly``: a request naming one is told so."""
    props = spec.get("components", {}).get("schemas", {}).get(schema, {}).get("properties", {})
    return frozenset(name for name, prop in props.items() if prop.get("readOnly"))


class AllowedMethods:
    """Which methods each spec path accepts, for 405 answers and their Allow header."""

    def __init__(self, specs: list[tuple[dict[str, Any], str]]) -> None:
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for spec, base in specs:
            for template, item in spec["paths"].items():
                methods = sorted(m.upper() for m in item if m in _HTTP_METHODS)
                pattern = re.escape(base + template)
                pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", pattern)
                self._routes.append((re.compile(pattern + "/?"), ", ".join(methods)))

    def __call__(self, path: str) -> str | None:
        """The Allow value for ``path``, or None when no spec path matches it."""
        for pattern, allow in self._routes:
            if pattern.fullmatch(path):
                return allow
        return None


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class UnroutedGuard:
    """Refuse, in the surface's own shape, requests under /v1 or /api that no operation took.

    Without this, Flask would answer them itself (HEAD and OPTIONS of a GET route even reach the
    view, without any security having run).
    """

    def __init__(self, app: ASGIApp, allow: AllowedMethods) -> None:
        self.app = app
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            routed = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
            if (
                not routed
                and (errors.is_dashboard(path) or path.startswith("/v1/"))
                and not (_is_docs(path))
            ):
                allowed = self.allow(path)
                if allowed is None:
                    raise errors.NotFound(
                        details={"path": "no such resource"}
                        if not errors.is_dashboard(path)
                        else "No such resource"
                    )
                raise errors.MethodNotAllowed(headers={"Allow": allowed})
        await self.app(scope, receive, send)


def _is_docs(path: str) -> bool:
    return any(path == b + "/openapi.json" or path.startswith(b + "/ui") for _, b in SURFACES)


def configure_logging() -> None:
    """One JSON object per line on stderr for the access log and errors."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("orgsettings")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    # The logging HOWTO's "Optimization" knobs: the log lines carry none of this, and finding
    # the caller walks the stack on every request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Connexion logs a warning on every request to an operation that accepts two media types
    # (PATCH /v1/organization) and on every 4xx; our own error handler logs what matters.
    logging.getLogger("connexion").setLevel(logging.ERROR)


#: Connexion's default stack, with request validation set up once per operation, the Swagger UI
#: router entered only for docs paths, routes remembered per method and path, and without
#: response validation, which this app never turns on (the tests and Schemathesis check
#: responses against the specs instead of every production request paying for it).
_REPLACED = {
    RequestValidationMiddleware: CachedRequestValidationMiddleware,
    SwaggerUIMiddleware: DocsOnlySwaggerUIMiddleware,
    RoutingMiddleware: CachedRoutingMiddleware,
}
MIDDLEWARES = [
    _REPLACED.get(m, m)
    for m in ConnexionMiddleware.default_middlewares
    if m is not ResponseValidationMiddleware
]


def _lifespan(store: Store):
    """Close the database cleanly when the server stops (SIGTERM or Ctrl-C)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        yield
        store.close()

    return lifespan


def create_app(config: Config | None = None) -> connexion.FlaskApp:
    """Build the app: migrate the store, mount both specs, wire errors and middleware."""
    config = config or Config.from_env()
    configure_logging()  # first: building the stack below would log Connexion's warnings
    store = Store(config.db_path, group_commit=True)
    store.migrate()
    v1 = load_spec("v1.yaml")
    dashboard = load_spec("dashboard.yaml")
    services = Services(config=config, store=store, v1_scopes=required_scopes(v1))
    from handlers.jwt_auth import JwtVerifier

    services.jwt = JwtVerifier.from_config(config)

    # Compact JSON in the field order handlers build (FlaskApp's default pretty-prints).
    app = connexion.FlaskApp(
        __name__,
        middlewares=list(MIDDLEWARES),  # a copy: add_middleware inserts into it
        specification_dir=SPEC_DIR,
        jsonifier=Jsonifier(json, separators=(",", ":")),
        lifespan=_lifespan(store),
    )
    # The end of the stack: spec operations run straight from the routed scope (see dispatch);
    # the rest goes to Flask behind a bridge without thread hops (see wsgi_bridge).
    app._middleware_app.asgi_app = OperationDispatcher(
        {**operations.build(v1), **operations.build(dashboard)},
        fallback=BufferedWSGIBridge(app.app.wsgi_app, store.group),
        group=store.group,
    )
    docs = SwaggerUIOptions(spec_path="/openapi.json", swagger_ui_path="/ui")
    app.add_api(
        v1,
        name="v1",
        security_map=SECURITY_MAP,
        strict_validation=True,
        validator_map=validator_map(read_only_fields(v1, "Organization")),
        swagger_ui_options=docs,
    )
    app.add_api(
        dashboard,
        name="dashboard",
        security_map=SECURITY_MAP,
        strict_validation=True,
        validator_map=validator_map(frozenset()),
        swagger_ui_options=docs,
    )
    for exc in (Exception, ProblemException, HTTPException, errors.ApiError):
        app.add_error_handler(exc, errors.connexion_handler)
    app.app.register_error_handler(WerkzeugHTTPException, errors.reraise_flask_http_exception)
    allow = AllowedMethods([(v1, "/v1"), (dashboard, "/api")])
    app.add_middleware(UnroutedGuard, position=MiddlewarePosition.BEFORE_SECURITY, allow=allow)
    app.add_middleware(
        RequestContext,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        services=services,
        allow_for=allow,
    )
    # Connexion builds its middleware stack on the first request; build it now (connexion is
    # pinned) so the first request does not pay for the build.
    middleware = app.middleware
    middleware.app, middleware.middleware_stack = middleware._build_middleware_stack()
    health.register(app.app, services)
    app.app.extensions["orgsettings"] = services
    # The parsed specs, compiled schemas and routing tables live as long as the process; moving
    # them out of the collector's view keeps full collections short (they were the p99 tail).
    gc.collect()
    gc.freeze()
    # A COMMIT returns on the commit thread, which then needs the GIL to hand its batch back to
    # the loop; the loop thread, busy with the next requests, gives it up only every switch
    # interval (5 ms by default). At 0.5 ms the batch is answered sooner: in-process A/B runs
    # of 16 concurrent PATCHes gave 4-10% more requests/s and a lower p50.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return app
