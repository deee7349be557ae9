"""Developer API keys: minting, hashing, and the bearer check behind the v1 security scheme."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import time
from typing import Any

from connexion.lifecycle import ConnexionRequest

from handlers.errors import Forbidden, Unauthorized
from storage.records import utcnow

KEY_PREFIX = "am_live_"
SECRET_LENGTH = 40
PREFIX_LENGTH = len(KEY_PREFIX) + 4
BASE62 = string.ascii_letters + string.digits
SCOPES = ("org:read", "org:admin:write", "audit:read")
#: last_used_at is written at most this often per key and process, to keep reads off the
#: write lock; it is accurate to about a minute.
TOUCH_INTERVAL_SECONDS = 60.0


def hash_key(secret: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def mint_key() -> tuple[str, str, str]:
    """A new key as (secret, display prefix, hash); the secret is shown once and never stored."""
    secret = KEY_PREFIX + "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
    return secret, secret[:PREFIX_LENGTH], hash_key(secret)


#: The shape of a key worth looking up: the prefix and 32-128 base62 characters (ASCII only).
_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9]{32,128}")


def _looks_like_key(token: str) -> bool:
    return _KEY_SHAPE.fullmatch(token) is not None


def bearer_info(token: str, request: ConnexionRequest) -> dict[str, Any]:
    """x-bearerInfoFunc of the v1 spec: authenticate the key, then check the operation's scope.

    The key is found by the hash of what was sent (an indexed lookup; no secret is compared
    character by character). Unknown, malformed and revoked keys are all the same 401. The
    scopes an operation accepts come from its ``x-required-scopes`` in the spec (any one of
    them suffices); lacking all of them is 403 with ``details.required_scope``.
    """
    scope = request.scope
    ctx = scope["orgsettings"]
    services = ctx["services"]
    if not _looks_like_key(token):
        raise Unauthorized()
    key = services.store.key_by_hash(hash_key(token))
    if key is None or key["revoked_at"] is not None:
        raise Unauthorized()
    ctx["actor_id"] = key["id"]
    operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
    accepted = services.v1_scopes.get(operation_id, ())
    if accepted and not set(accepted) & set(key["scopes"]):
        raise Forbidden(details={"required_scope": accepted[0]})
    _touch(services, key)
    return {
        "sub": key["id"],
        "key_id": key["id"],
        "organization_id": key["organization_id"],
        "scopes": key["scopes"],
    }


def _touch(services: Any, key: dict[str, Any]) -> None:
    now = time.monotonic()
    last = services.key_touched.get(key["id"])
    if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
        return
    services.key_touched[key["id"]] = now
    # Deferred to a coming group commit without waiting: never on the request's critical path.
    services.store.touch_key(key["id"], utcnow())
