"""Dashboard JWT authentication: hostile tokens are 401, key set-ups, and the CLI's tokens."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import JWT_SECRET, OPERATOR, bearer, new_database, sync_store
from handlers.app import create_app
from handlers.auth.jwt import JwtVerifier, issue_token
from handlers.config import Config
from handlers.errors import Unauthorized

ISSUER = "https://auth.example.test"
AUDIENCE = "orgsettings-dashboard"


def b64(data: bytes) -> str:
    """Unpadded base64url, as JWS segments are encoded."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(org_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Valid ADMIN claims for ``org_id``; a None override drops the claim."""
    base = {"sub": "user-1", "role": "ADMIN", "organizationId": org_id, "exp": time.time() + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = JWT_SECRET) -> str:
    """An HS256 token for ``payload``."""
    return jwt.encode(payload, secret, algorithm="HS256")


def forge_hmac(payload: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    """An HMAC-signed token made by hand (PyJWT refuses a PEM or a short key as the secret)."""
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), digest).digest()
    return f"{header}.{body}.{b64(signature)}"


def tampered(org_id: str) -> str:
    """A USER token whose payload was edited to SUPERADMIN after signing."""
    header, _, signature = hs256(claims(org_id, role="USER")).split(".")
    body = b64(json.dumps(claims(org_id, role="SUPERADMIN")).encode())
    return f"{header}.{body}.{signature}"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """An RSA private key for the RS256 set-up."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private_key: Any) -> bytes:
    """The PEM of a private key's public half."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def app_with(tmp_path: Path) -> Iterator[Callable[[Config], Any]]:
    """Build extra apps from a config; yields a factory returning (test client, store). Each
    client is started (the app's lifespan starts its store) and stopped after the test."""
    stores = []
    with contextlib.ExitStack() as started:

        def build(config: Config):
            store = sync_store(config.database)
            stores.append(store)
            return started.enter_context(create_app(config).test_client()), store

        yield build
    for store in stores:
        store.close()


@pytest.fixture
def rsa_setup(tmp_path, monkeypatch, rsa_key, app_with):
    """An app verifying RS256 with a public key read from ORGSETTINGS_JWT_PUBLIC_KEY."""
    key_file = tmp_path / "jwt_public.pem"
    key_file.write_bytes(public_pem(rsa_key))
    monkeypatch.delenv("ORGSETTINGS_JWT_SECRET", raising=False)
    monkeypatch.setenv("ORGSETTINGS_JWT_PUBLIC_KEY", str(key_file))
    monkeypatch.setenv("ORGSETTINGS_LOG_REQUESTS", "0")
    monkeypatch.setenv("ORGSETTINGS_STATE_DIR", str(tmp_path))
    config = Config.from_env(new_database(tmp_path, "rs256.db"))
    client, store = app_with(config)
    org = store.create_org(name="RSA Org", actor=OPERATOR)
    return client, org


def url(org_id: str) -> str:
    """A dashboard path that any member may read."""
    return f"/api/organizations/{org_id}/contact-protection-settings"


def assert_401(response, token: str | None = None) -> None:
    """The dashboard's 401: body, header, and no echo of the token."""
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "Unauthorized"
    assert isinstance(body["details"], str) and body["details"]
    if token:
        assert token not in response.text
        assert JWT_SECRET not in response.text


HOSTILE: dict[str, Callable[[str], str]] = {
    "wrong secret": lambda org: hs256(claims(org), secret="x" * 48),
    "expired": lambda org: hs256(claims(org, exp=time.time() - 3600)),
    "missing exp": lambda org: hs256(claims(org, exp=None)),
    "exp not a number": lambda org: hs256(claims(org, exp="tomorrow")),
    "missing sub": lambda org: hs256(claims(org, sub=None)),
    "sub not a string": lambda org: hs256(claims(org, sub=42)),
    "empty sub": lambda org: hs256(claims(org, sub="")),
    "missing role": lambda org: hs256(claims(org, role=None)),
    "unknown role": lambda org: hs256(claims(org, role="OWNER")),
    "lowercase role": lambda org: hs256(claims(org, role="admin")),
    "role not a string": lambda org: hs256(claims(org, role=["ADMIN"])),
    "ADMIN without organizationId": lambda org: hs256(claims(None)),
    "USER without organizationId": lambda org: hs256(claims(None, role="USER")),
    "organizationId not a string": lambda org: hs256(claims(org, organizationId=7)),
    "empty organizationId": lambda org: hs256(claims(org, organizationId="")),
    "not yet valid": lambda org: hs256(claims(org, nbf=time.time() + 3600)),
    "alg none": lambda org: jwt.encode(claims(org), None, algorithm="none"),
    "tampered payload": tampered,
    "RS256 against HS256": lambda org: jwt.encode(
        claims(org), rsa.generate_private_key(65537, 2048), algorithm="RS256"
    ),
    "HS512 with the right secret": lambda org: forge_hmac(
        claims(org), JWT_SECRET.encode(), "HS512"
    ),
    "not a JWT": lambda org: "not-a-jwt",
    "two segments": lambda org: "e30.e30",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_tokens_are_401(client, store, org, name):
    token = HOSTILE[name](org["id"])
    before = store.get_org(org["id"])
    assert_401(client.get(url(org["id"]), headers=bearer(token)), token)
    put = client.put(url(org["id"]), json={"contactProtectionPeriod": 5}, headers=bearer(token))
    assert_401(put, token)
    assert store.get_org(org["id"]) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
def test_missing_or_other_scheme_credentials_are_401(client, org, headers):
    assert_401(client.get(url(org["id"]), headers=headers))


def test_an_api_key_is_not_a_dashboard_token(client, org, admin_key):
    assert_401(client.get(url(org["id"]), headers=bearer(admin_key)), admin_key)


def test_a_valid_token_within_leeway_is_accepted(client, org):
    token = hs256(claims(org["id"], exp=time.time() - 5))
    assert client.get(url(org["id"]), headers=bearer(token)).status_code == 200


def test_rs256_setup_accepts_rs256_tokens(rsa_setup, rsa_key):
    client, org = rsa_setup
    token = jwt.encode(claims(org["id"]), rsa_key, algorithm="RS256")
    assert client.get(url(org["id"]), headers=bearer(token)).status_code == 200


def test_rs256_setup_refuses_hs256_signed_with_the_public_key(rsa_setup, rsa_key):
    client, org = rsa_setup
    token = forge_hmac(claims(org["id"]), public_pem(rsa_key))
    assert_401(client.get(url(org["id"]), headers=bearer(token)), token)


def test_rs256_setup_refuses_hs256_signed_with_a_secret(rsa_setup):
    client, org = rsa_setup
    token = hs256(claims(org["id"]))
    assert_401(client.get(url(org["id"]), headers=bearer(token)), token)


def test_es256_setup_accepts_only_es256(tmp_path):
    private = ec.generate_private_key(ec.SECP256R1())
    config = Config(database=str(tmp_path / "es.db"), jwt_public_key=public_pem(private).decode())
    verifier = JwtVerifier.from_config(config)
    assert verifier.algorithms == ["ES256"]
    token = jwt.encode(claims("org-1"), private, algorithm="ES256")
    assert verifier.verify(token)["sub"] == "user-1"


def test_hs256_setup_allows_only_hs256(config):
    assert JwtVerifier.from_config(config).algorithms == ["HS256"]


@pytest.fixture
def iss_aud_client(tmp_path, app_with):
    """A client for an app that enforces an issuer and an audience, and an org in it."""
    config = Config(
        database=new_database(tmp_path, "iss.db"),
        jwt_secret=JWT_SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        log_requests=False,
    )
    client, store = app_with(config)
    return client, store.create_org(name="Iss Org", actor=OPERATOR)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"iss": ISSUER, "aud": AUDIENCE}, 200),
        ({"iss": ISSUER, "aud": [AUDIENCE, "other"]}, 200),
        ({"iss": "https://evil.example", "aud": AUDIENCE}, 401),
        ({"iss": ISSUER, "aud": "someone-else"}, 401),
        ({"aud": AUDIENCE}, 401),
        ({"iss": ISSUER}, 401),
    ],
)
def test_issuer_and_audience_are_enforced_when_configured(iss_aud_client, extra, status):
    client, org = iss_aud_client
    token = hs256({**claims(org["id"]), **extra})
    response = client.get(url(org["id"]), headers=bearer(token))
    assert response.status_code == status
    if status == 401:
        assert_401(response, token)


def test_issued_tokens_satisfy_a_configured_issuer_and_audience(iss_aud_client, tmp_path):
    client, org = iss_aud_client
    config = Config(
        database=str(tmp_path / "unused.db"),
        jwt_secret=JWT_SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    token = issue_token(config, org_id=org["id"], role="USER", sub="u")["token"]
    assert client.get(url(org["id"]), headers=bearer(token)).status_code == 200


def test_verify_returns_the_claims(config):
    token = issue_token(config, org_id="org-1", role="ADMIN", sub="user-9")["token"]
    verified = JwtVerifier.from_config(config).verify(token)
    assert (verified["sub"], verified["role"], verified["organizationId"]) == (
        "user-9",
        "ADMIN",
        "org-1",
    )


def test_verify_raises_unauthorized_with_a_reason(config):
    with pytest.raises(Unauthorized) as caught:
        JwtVerifier.from_config(config).verify(hs256(claims("o", exp=time.time() - 3600)))
    assert caught.value.details == "token has expired"


def test_issue_token_answers_token_and_rfc3339_expiry(config):
    before = int(time.time())
    issued = issue_token(config, org_id=None, role="SUPERADMIN", sub="root", ttl=120)
    decoded = jwt.decode(issued["token"], JWT_SECRET, algorithms=["HS256"])
    assert decoded["role"] == "SUPERADMIN" and "organizationId" not in decoded
    expires = dt.datetime.strptime(issued["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert expires.replace(tzinfo=dt.UTC).timestamp() == decoded["exp"]
    assert before + 120 <= decoded["exp"] <= int(time.time()) + 120


@pytest.mark.parametrize(
    ("org_id", "role", "sub", "ttl"),
    [
        (None, "ADMIN", "u", 60),
        (None, "USER", "u", 60),
        ("o", "OWNER", "u", 60),
        ("o", "ADMIN", "", 60),
        ("o", "ADMIN", "u", 0),
    ],
)
def test_issue_token_refuses_tokens_the_server_would_refuse(config, org_id, role, sub, ttl):
    with pytest.raises(ValueError):
        issue_token(config, org_id=org_id, role=role, sub=sub, ttl=ttl)


def test_without_a_secret_one_is_generated_in_a_private_file(tmp_path):
    config = Config(database=str(tmp_path / "db" / "orgsettings.db"))
    issued = issue_token(config, org_id="o", role="ADMIN", sub="u")
    assert stat.S_IMODE(config.secret_file.stat().st_mode) == 0o600
    assert JwtVerifier.from_config(config).verify(issued["token"])["sub"] == "u"


def test_a_weak_rsa_key_is_refused_at_start(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    config = Config(database=str(tmp_path / "x.db"), jwt_public_key=public_pem(weak).decode())
    with pytest.raises(ValueError, match="2048"):
        JwtVerifier.from_config(config)


def test_a_non_p256_ec_key_is_refused_at_start(tmp_path):
    key = ec.generate_private_key(ec.SECP384R1())
    config = Config(database=str(tmp_path / "x.db"), jwt_public_key=public_pem(key).decode())
    with pytest.raises(ValueError, match="P-256"):
        JwtVerifier.from_config(config)


def test_a_short_secret_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtVerifier.from_config(Config(database=str(tmp_path / "x.db"), jwt_secret="short"))


def test_the_actor_is_the_token_subject_in_the_audit_trail(client, store, org, config):
    token = issue_token(config, org_id=org["id"], role="ADMIN", sub="user-77")["token"]
    body = {"contactProtectionPeriod": 3}
    assert client.put(url(org["id"]), json=body, headers=bearer(token)).status_code == 200
    events, _ = store.list_events(org["id"], limit=1)
    assert events[0]["actor"]["id"] == "user-77"
    assert token not in json.dumps(events[0])
