"""Dashboard authentication: verify the JWT bearer token a signed-in user's dashboard sends.

The key and the algorithm allow-list are fixed once, from the config, when the app is built:
HS256 with the shared secret, or RS256/ES256 (matching the key's type) with a PEM public key.
When a public key is configured HS256 is refused, so a token "signed" with the public key as an
HMAC secret cannot pass (the classic algorithm-confusion attack). ``none`` is never accepted.

Every reason a token is refused becomes ``Unauthorized`` with a short, fixed explanation; the
token itself, the secret and the key never appear in an error body or a log line.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.exceptions import InvalidSubjectError

from handlers.config import Config
from handlers.errors import Unauthorized
from handlers.http import request_context

ROLES = ("USER", "ADMIN", "SUPERADMIN")
#: Roles that belong to one organization and so must name it in ``organizationId``.
MEMBER_ROLES = ("USER", "ADMIN")
#: RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32
MIN_RSA_KEY_BITS = 2048
MAX_SUB_LENGTH = 255

_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not yet valid"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.InvalidAlgorithmError, "token algorithm is not accepted"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidIssuedAtError, "token iat claim is malformed"),
    (InvalidSubjectError, "token sub claim must be a non-empty string"),
)


class JwtVerifier:
    """Verifies dashboard tokens against one key and a fixed algorithm allow-list."""

    def __init__(
        self,
        key: Any,
        algorithms: list[str],
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: int = 0,
    ) -> None:
        if not algorithms or "none" in (a.lower() for a in algorithms):
            raise ValueError("the JWT algorithm allow-list must be non-empty and exclude none")
        self._key = key
        self.algorithms = list(algorithms)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._options = {
            "require": ["exp", "sub"],
            "verify_aud": audience is not None,
            "verify_iss": issuer is not None,
            "enforce_minimum_key_length": True,
        }

    @classmethod
    def from_config(cls, config: Config) -> JwtVerifier:
        """The verifier for ``config``: its public key when set, else the HS256 secret."""
        if config.jwt_public_key:
            key = load_pem_public_key(config.jwt_public_key.encode())
            if isinstance(key, rsa.RSAPublicKey):
                # PyJWT refuses shorter keys on every verify; refuse them once, at start.
                if key.key_size < MIN_RSA_KEY_BITS:
                    raise ValueError(
                        f"ORGSETTINGS_JWT_PUBLIC_KEY: an RSA key needs {MIN_RSA_KEY_BITS}+ bits"
                    )
                algorithms = ["RS256"]
            elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
                algorithms = ["ES256"]
            else:
                raise ValueError("ORGSETTINGS_JWT_PUBLIC_KEY must be an RSA or P-256 EC public key")
        else:
            # Made on first start when unset, so that `serve` and `token create` share it.
            key = config.hs256_secret(create=True)
            if not key or len(key.encode()) < MIN_HS256_SECRET_BYTES:
                raise ValueError(
                    f"the HS256 JWT secret must be at least {MIN_HS256_SECRET_BYTES} bytes long"
                )
            algorithms = ["HS256"]
        return cls(
            key,
            algorithms,
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            leeway=config.jwt_leeway_seconds,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises Unauthorized saying why a token is refused."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self.algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(details=f"token is missing the {exc.claim} claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(details=_reason(exc)) from None
        check_claims(claims)
        return claims


def _reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "token is malformed"


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def check_claims(claims: dict[str, Any]) -> None:
    """Refuse signed tokens whose own claims are missing or malformed."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized(details="token sub claim must be a non-empty string")
    if not _is_text(sub):
        # A lone surrogate (JSON "\ud800") is not Unicode: it could not be stored on the audit
        # event, so the token is refused like any malformed one.
        raise Unauthorized(details="token sub claim must be valid Unicode text")
    if len(sub) > MAX_SUB_LENGTH:
        # The sub becomes the audit actor's id, which the spec bounds.
        raise Unauthorized(details=f"token sub claim must be at most {MAX_SUB_LENGTH} characters")
    role = claims.get("role")
    if role is None:
        raise Unauthorized(details="token is missing the role claim")
    if role not in ROLES:
        raise Unauthorized(details="token role claim must be one of: " + ", ".join(ROLES))
    org_id = claims.get("organizationId")
    if role in MEMBER_ROLES and org_id is None:
        raise Unauthorized(details=f"token for role {role} is missing the organizationId claim")
    if org_id is not None and (
        not isinstance(org_id, str) or not org_id.strip() or not _is_text(org_id)
    ):
        raise Unauthorized(details="token organizationId claim must be a non-empty string")


def issue_token(
    config: Config, *, org_id: str | None, role: str, sub: str, ttl: int = 3600
) -> dict[str, str]:
    """Sign an HS256 token for the operator CLI; returns ``{"token", "expires_at"}``."""
    if role not in ROLES:
        raise ValueError("role must be one of: " + ", ".join(ROLES))
    if role in MEMBER_ROLES and not org_id:
        raise ValueError(f"a {role} token needs an organization")
    if not sub:
        raise ValueError("sub must not be empty")
    if ttl < 1:
        raise ValueError("ttl must be at least 1 second")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl}
    if org_id:
        claims["organizationId"] = org_id
    if config.jwt_issuer:
        claims["iss"] = config.jwt_issuer
    if config.jwt_audience:
        claims["aud"] = config.jwt_audience
    token = jwt.encode(claims, config.hs256_secret(create=True), algorithm="HS256")
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"token": token, "expires_at": expires}


class JwtAuthenticator:
    """The dashboard bearer check: verify the token, note the actor, return token_info."""

    def __init__(self, verifier: JwtVerifier) -> None:
        self.verifier = verifier

    async def __call__(self, token: str, request: Any) -> dict[str, Any]:
        """token_info (sub, role, organization_id) of a valid token."""
        claims = self.verifier.verify(token)
        request_context.set_actor(claims["sub"])
        return {
            "sub": claims["sub"],
            "role": claims["role"],
            "organization_id": claims.get("organizationId"),
        }
