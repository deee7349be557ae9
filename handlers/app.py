"""The app factory: one Connexion ``AsyncApp`` serving both surfaces over one store.

Everything is wired through Connexion's documented extension points: ``add_api`` with a
``validator_map`` (strict JSON, every error at once), a ``security_map`` (API keys on /v1, JWTs
on /api) and a ``Resolver`` that hands each operation its ``Services``; one error handler
(``add_error_handler``) that answers in each surface's shape; the request-id/limits/log
middleware in the ``middlewares`` list; the probes through ``add_url_rule``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Connexion imports Starlette's test client when it is first imported, and Starlette 1.x
    # warns there that the client prefers httpx2. The server never uses the test client, so
    # that one warning is kept out of its logs, for this import only: in a server process
    # (handlers.cli.served) this is Connexion's first import.
    warnings.filterwarnings(
        "ignore", category=StarletteDeprecationWarning, module=r"connexion\.apps\.abstract"
    )
    import connexion

import orjson
from connexion.exceptions import ProblemException
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException

from handlers.auth.api_keys import KeyAuthenticator
from handlers.auth.jwt import JwtAuthenticator, JwtVerifier
from handlers.auth.security import bearer_security_map
from handlers.config import WORKERS_METRICS_SUBDIR, Config
from handlers.database import configured_store
from handlers.errors import ApiError
from handlers.http import probes
from handlers.http.docs import DocsOffTheApiPath
from handlers.http.metrics import Metrics
from handlers.http.middleware import RequestContext
from handlers.http.operations import OperationCaller, refuse_unsupported
from handlers.http.rate_limit import RateLimits
from handlers.http.rendering import ErrorRenderer
from handlers.http.request_validation import ValidationOffTheApiPath
from handlers.http.routes import RouteTable
from handlers.http.validation import SchemaChecks, validator_map
from handlers.services import Services
from handlers.specs import SPEC_DIR, load_spec, read_only_fields
from storage import StorageUnavailable, Store

#: Unknown query parameters are refused (Connexion's ``strict_validation``).
STRICT_VALIDATION = True


class ServicesResolver(Resolver):
    """Resolves an operationId to its function with ``Services`` bound as first argument."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    def resolve_function_from_operation_id(self, operation_id: str) -> Callable[..., Any]:
        """The handler named by ``operation_id``, taking the rest of its arguments from
        Connexion (path and query parameters, ``body``, ``token_info``)."""
        function = super().resolve_function_from_operation_id(operation_id)
        return functools.partial(function, self.services)


class OrjsonModule:
    """The ``json`` module interface Connexion's Jsonifier calls, backed by orjson: compact
    output in the order handlers build, about a twentieth of json.dumps' time."""

    @staticmethod
    def dumps(data: Any, **_options: Any) -> str:
        """Serialize ``data`` (Jsonifier's keyword options are json.dumps-only)."""
        return orjson.dumps(data).decode()

    @staticmethod
    def loads(data: str | bytes) -> Any:
        """Parse JSON text."""
        return orjson.loads(data)


def _lifespan(
    store: Store, metrics: Metrics | None, started: Callable[[], None] | None
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """Start the store on the server's loop and migrate when the server starts, then call
    ``started``; write what is pending and close when it stops, then tell the metrics this
    process is done."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await store.start()
        await store.migrate()
        if started is not None:
            started()
        try:
            yield
        finally:
            try:
                await store.close()
            finally:
                if metrics is not None:
                    metrics.close()

    return lifespan


def _middlewares(
    apis: list[tuple[dict[str, Any], str, str]],
    jsonifier: Jsonifier,
    resolver: Resolver,
    validators: dict[str, dict[str, Any]],
) -> list[Any]:
    """Connexion's default middlewares, with its Swagger UI (``DocsOffTheApiPath``) and its
    request validation (``ValidationOffTheApiPath``) kept off the API's path, and last
    ``OperationCaller``, which validates each operation's request with validators built once
    and calls its function with the values they checked. ``apis``: (spec, base path, surface)."""
    docs = functools.partial(
        DocsOffTheApiPath,
        specs=[(spec, base_path) for spec, base_path, _ in apis],
        specification_dir=str(SPEC_DIR),
        swagger_ui_options=SwaggerUIOptions(spec_path="/openapi.json", swagger_ui_path="/ui"),
    )
    validation = functools.partial(
        ValidationOffTheApiPath,
        apis=[
            (
                spec,
                base_path,
                {
                    "resolver": resolver,
                    "strict_validation": STRICT_VALIDATION,
                    "validator_map": validators[surface],
                },
            )
            for spec, base_path, surface in apis
        ],
    )
    replaced = {SwaggerUIMiddleware: docs, RequestValidationMiddleware: validation}
    stack = [replaced.get(m, m) for m in ConnexionMiddleware.default_middlewares]
    caller = functools.partial(
        OperationCaller,
        jsonifier=jsonifier,
        validators=validators,
        strict_validation=STRICT_VALIDATION,
    )
    return [*stack, caller]


def create_app(
    config: Config | None = None,
    store: Store | None = None,
    *,
    started: Callable[[], None] | None = None,
) -> connexion.AsyncApp:
    """Build the app over ``store`` (by default the one ``config`` names).

    The store is migrated when the app starts (ASGI lifespan) and closed when it stops;
    ``started`` is called once it is migrated, with the app's middleware stack built.
    """
    config = config or Config.from_env()
    store = store or configured_store(config, create=config.create_database)
    services = Services(config=config, store=store)
    metrics = None
    if config.metrics:
        shared = config.workers_dir
        metrics = Metrics(shared / WORKERS_METRICS_SUBDIR if shared is not None else None)
    v1 = load_spec("v1.yaml")
    dashboard = load_spec("dashboard.yaml")
    for spec in (v1, dashboard):
        refuse_unsupported(spec)
    jsonifier = Jsonifier(OrjsonModule)
    resolver = ServicesResolver(services)
    checks = SchemaChecks()  # the compiled schemas of this app's validators
    validators = {
        "v1": validator_map(read_only_fields(v1, "Organization"), checks),
        "dashboard": validator_map(frozenset(), checks),
    }
    apis = [(v1, "/v1", "v1"), (dashboard, "/api", "dashboard")]
    app = connexion.AsyncApp(
        __name__,
        specification_dir=SPEC_DIR,
        jsonifier=jsonifier,
        lifespan=_lifespan(store, metrics, started),
        middlewares=_middlewares(apis, jsonifier, resolver, validators),
        resolver=resolver,
        strict_validation=STRICT_VALIDATION,
    )
    limits = RateLimits(
        config.auth_failures_per_minute, config.key_requests_per_minute, config.workers_dir
    )
    keys = KeyAuthenticator(store, limits)
    app.add_api(
        v1,
        name="v1",
        base_path="/v1",
        security_map=bearer_security_map(keys),
        validator_map=validators["v1"],
    )
    jwt = JwtAuthenticator(JwtVerifier.from_config(config))
    app.add_api(
        dashboard,
        name="dashboard",
        base_path="/api",
        security_map=bearer_security_map(jwt),
        validator_map=validators["dashboard"],
    )
    if metrics is not None:
        store.add_observer(metrics)
    render = ErrorRenderer()
    for exc in (Exception, ProblemException, HTTPException, ApiError, StorageUnavailable):
        app.add_error_handler(exc, render)
    app.add_middleware(
        RequestContext,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        max_body_bytes=config.max_body_bytes,
        log_requests=config.log_requests,
        limits=limits,
        metrics=metrics,
        routes=RouteTable(apis),
        body_timeout_seconds=config.body_timeout_seconds,
    )
    app.add_url_rule("/", "index", probes.index(metrics is not None), methods=["GET"])
    app.add_url_rule("/healthz", "healthz", probes.healthz(), methods=["GET"])
    app.add_url_rule("/readyz", "readyz", probes.readyz(store), methods=["GET"])
    if metrics is not None:
        app.add_url_rule("/metrics", "metrics", metrics.endpoint, methods=["GET"])
    return app
