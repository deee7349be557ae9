"""The Swagger UI and the spec files, off the API's path.

Connexion's ``SwaggerUIMiddleware`` walks its router on every request, to find the few it
serves (``{base}/ui/...``, ``{base}/openapi.json`` and ``.yaml``). ``DocsOffTheApiPath`` takes
its place in the ``middlewares`` list: a request for a spec operation (its route was matched
once by the outermost middleware) goes straight on; every other request goes through a
docs-only ``ConnexionMiddleware`` holding that same Swagger UI middleware, configured as the
app's was, which serves the docs exactly as before and passes the rest on.
"""

from __future__ import annotations

from typing import Any

from connexion.middleware import ConnexionMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.http import request_context


class DocsOffTheApiPath:
    """Spec operations pass straight on; everything else meets the Swagger UI first."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        specs: list[tuple[dict[str, Any], str]],
        specification_dir: str,
        swagger_ui_options: SwaggerUIOptions,
    ) -> None:
        """``specs``: (spec, base path) of each API, as given to ``add_api``."""
        self.app = app
        self.docs = ConnexionMiddleware(
            app,
            import_name=__name__,
            middlewares=[SwaggerUIMiddleware],
            specification_dir=specification_dir,
            swagger_ui_options=swagger_ui_options,
        )
        for spec, base_path in specs:
            self.docs.add_api(spec, base_path=base_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an API request on; send the rest through the docs."""
        if scope["type"] != "http" or request_context.current().route.operation_id is not None:
            await self.app(scope, receive, send)
        else:
            await self.docs(scope, receive, send)
