"""Connexion security handlers (``security_map``) bound to this app's authenticators.

Both surfaces use an HTTP bearer scheme: /v1 an API key, /api a JWT. Connexion instantiates a
security handler class per operation without arguments, so each app gets its own subclass
that carries its authenticator; ``get_fn`` (Connexion's documented extension point) returns
the check for one operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from connexion.lifecycle import ConnexionRequest
from connexion.security import NO_VALUE, AbstractSecurityHandler

#: Checks a bearer token for a request; returns token_info or raises Unauthorized/Forbidden.
Authenticate = Callable[[str, ConnexionRequest], Awaitable[dict[str, Any]]]


def bearer_security_map(authenticate: Authenticate) -> dict[str, type[AbstractSecurityHandler]]:
    """A ``security_map`` whose bearer scheme is checked by ``authenticate``."""

    class BearerHandler(AbstractSecurityHandler):
        """HTTP bearer: the Authorization header's credentials, checked by ``authenticate``."""

        def get_fn(self, security_scheme: dict, required_scopes: list) -> Callable:
            """The check Connexion runs for one operation's bearer requirement."""

            async def verify(request: ConnexionRequest) -> Any:
                auth_type, token = self.get_auth_header_value(request)
                if auth_type != "bearer" or not token:
                    return NO_VALUE  # Connexion answers "No authorization token provided"
                return await authenticate(token, request)

            return verify

    return {"bearer": BearerHandler}
