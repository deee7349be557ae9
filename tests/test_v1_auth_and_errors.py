"""Developer API: API-key auth and scopes, the error envelope, and what every response carries."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from conftest import MISSING_ORG, OPERATOR, POSTGRESQL, bearer, outside
from handlers.auth.api_keys import hash_key

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
V1_FIELDS = {
    "id",
    "name",
    "billing_email",
    "plan",
    "throughput_tier",
    "tenant_type",
    "message_retention_days",
    "mms_retention_days",
    "is_reseller",
    "quiet_hours",
    "auto_replies",
    "registration_status",
    "created_at",
    "updated_at",
}
DASHBOARD_ONLY = {
    "contact_protection_period",
    "missed_call_message",
    "missed_call_auto_message_enabled",
    "version",
}
#: (method, path, JSON body) of each v1 operation.
OPERATIONS = {
    "get-org": ("GET", "/v1/organization", None),
    "patch-org": ("PATCH", "/v1/organization", {"name": "Renamed"}),
    "list-audit": ("GET", "/v1/audit_events", None),
}


def snapshot(store, org_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The org record and its whole audit trail, to compare before and after a request."""
    return store.get_org(org_id), store.list_events(org_id, limit=100)[0]


def last_used_at(store, key: str, timeout: float = 5.0) -> str | None:
    """The key's last_used_at once a key-usage flush has had time to run (None if unset)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used = store.key_by_hash(hash_key(key))["last_used_at"]
        if used is not None:
            return used
        time.sleep(0.02)
    return None


def call(client, operation: str, headers: dict[str, str] | None = None):
    """Make one v1 operation's request with the given headers."""
    method, path, body = OPERATIONS[operation]
    return client.request(method, path, json=body, headers=headers or {})


def assert_envelope(response, code: str) -> dict[str, Any]:
    """The body is the v1 error envelope with this code and the response's request id."""
    body = response.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    error = body["error"]
    assert set(error) - {"details"} == {"code", "message", "request_id"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["Content-Type"].startswith("application/json")
    return error


# -- 401 ----------------------------------------------------------------------------------------

UNKNOWN_KEY = "am_live_" + "A" * 40
BAD_AUTH = {
    "missing": {},
    "empty": {"Authorization": ""},
    "scheme-only": {"Authorization": "Bearer"},
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "no-prefix": {"Authorization": "Bearer " + "A" * 40},
    "test-prefix": {"Authorization": "Bearer am_test_" + "A" * 40},
    "too-short": {"Authorization": "Bearer am_live_" + "A" * 31},
    "not-base62": {"Authorization": "Bearer am_live_" + "A" * 39 + "-"},
    "unknown": {"Authorization": "Bearer " + UNKNOWN_KEY},
    "trailing-junk": {"Authorization": "Bearer " + UNKNOWN_KEY + " x"},
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("case", sorted(BAD_AUTH))
def test_missing_or_bad_key_is_401(client, store, org, admin_key, operation, case):
    """No key, a malformed key or an unknown key: 401 with WWW-Authenticate, nothing changes."""
    before = snapshot(store, org["id"])
    response = call(client, operation, BAD_AUTH[case])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error = assert_envelope(response, "UNAUTHORIZED")
    assert error["message"] == "authentication failed"
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_revoked_key_is_401(client, store, org, admin_key, operation):
    """A revoked key stops working at once, exactly like an unknown one."""
    store.revoke_key(store.key_by_hash(hash_key(admin_key))["id"], OPERATOR)
    before = snapshot(store, org["id"])
    response = call(client, operation, bearer(admin_key))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert assert_envelope(response, "UNAUTHORIZED")["message"] == "authentication failed"
    assert snapshot(store, org["id"]) == before


def test_key_sharing_only_the_display_prefix_is_401(client, org, admin_key):
    """Only the whole key authenticates: its display prefix plus other characters does not."""
    forged = admin_key[:12] + "B" * (len(admin_key) - 12)
    assert client.get("/v1/organization", headers=bearer(forged)).status_code == 401


def test_auth_is_checked_before_the_body_is_parsed(client, store, org):
    """A bad key with an unparseable body is 401, not 400."""
    headers = {**bearer(UNKNOWN_KEY), "Content-Type": "application/json"}
    response = client.patch("/v1/organization", content=b"{", headers=headers)
    assert response.status_code == 401


def test_scope_is_checked_before_the_body_is_parsed(client, store, org, make_key):
    """A key without the scope sending an unparseable body is 403, not 400."""
    key = make_key(org["id"], "org:read")
    headers = {**bearer(key), "Content-Type": "application/json"}
    response = client.patch("/v1/organization", content=b"{", headers=headers)
    assert response.status_code == 403


# -- 403 and scopes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "scopes", "required"),
    [
        ("get-org", ["audit:read"], "org:read"),
        ("patch-org", ["org:read"], "org:admin:write"),
        ("patch-org", ["audit:read"], "org:admin:write"),
        ("patch-org", ["org:read", "audit:read"], "org:admin:write"),
        ("list-audit", ["org:read"], "audit:read"),
        ("list-audit", ["org:admin:write"], "audit:read"),
        ("list-audit", ["org:read", "org:admin:write"], "audit:read"),
    ],
)
def test_key_without_the_scope_is_403(client, store, org, make_key, operation, scopes, required):
    """A valid key lacking every accepted scope: 403 naming the scope, nothing changes."""
    key = make_key(org["id"], *scopes)
    before = snapshot(store, org["id"])
    response = call(client, operation, bearer(key))
    assert response.status_code == 403
    error = assert_envelope(response, "FORBIDDEN")
    assert error["message"] == "missing required scope"
    assert error["details"] == {"required_scope": required}
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    ("operation", "scopes"),
    [
        ("get-org", ["org:read"]),
        ("get-org", ["org:admin:write"]),
        ("patch-org", ["org:admin:write"]),
        ("list-audit", ["audit:read"]),
    ],
)
def test_key_with_an_accepted_scope_succeeds(client, org, make_key, operation, scopes):
    """Each operation answers 200 to a key holding one of the scopes it accepts."""
    response = call(client, operation, bearer(make_key(org["id"], *scopes)))
    assert response.status_code == 200
    assert response.json()["success"] is True


# -- one organization per key -------------------------------------------------------------------


@pytest.fixture
def other(store, make_key) -> tuple[dict[str, Any], str]:
    """A second organization and an all-scopes key for it."""
    other_org = store.create_org(name="Globex", actor=OPERATOR)
    return other_org, make_key(other_org["id"], "org:read", "org:admin:write", "audit:read")


def test_key_reads_only_its_own_organization(client, org, other):
    """GET returns the key's organization, never another."""
    other_org, key = other
    data = client.get("/v1/organization", headers=bearer(key)).json()["data"]
    assert (data["id"], data["name"]) == (other_org["id"], "Globex")


def test_key_changes_only_its_own_organization(client, store, org, other):
    """PATCH with one org's key leaves every other org untouched."""
    other_org, key = other
    before = snapshot(store, org["id"])
    assert client.patch("/v1/organization", json={"name": "X"}, headers=bearer(key)).is_success
    assert store.get_org(other_org["id"])["name"] == "X"
    assert snapshot(store, org["id"]) == before


def test_key_lists_only_its_own_audit_events(client, store, org, admin_key, other):
    """The audit trail a key sees holds none of another org's events."""
    client.patch("/v1/organization", json={"name": "Mine"}, headers=bearer(admin_key))
    _, key = other
    events = client.get("/v1/audit_events?limit=100", headers=bearer(key)).json()["data"]
    assert events
    assert {e["organization_id"] for e in events} == {other[0]["id"]}


# -- unrouted requests, body size -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v1/nope", "/v1/organizations", "/v1/organization/123", "/v1/audit_events/1", "/v1/", "/v1"],
)
def test_unknown_v1_path_is_404(client, admin_key, path):
    """A path the v1 spec does not define is 404 NOT_FOUND in the v1 envelope."""
    response = client.get(path, headers=bearer(admin_key))
    assert response.status_code == 404
    assert_envelope(response, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/organization", "GET, HEAD, PATCH"),
        ("PUT", "/v1/organization", "GET, HEAD, PATCH"),
        ("POST", "/v1/organization", "GET, HEAD, PATCH"),
        ("POST", "/v1/audit_events", "GET, HEAD"),
        ("DELETE", "/v1/audit_events", "GET, HEAD"),
    ],
)
def test_unsupported_method_is_405_with_allow(client, store, org, admin_key, method, path, allow):
    """A method the path does not support is 405 with the methods it does support."""
    before = snapshot(store, org["id"])
    response = client.request(method, path, headers=bearer(admin_key))
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert_envelope(response, "METHOD_NOT_ALLOWED")
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/ui/", "GET, HEAD"),
        ("DELETE", "/v1/openapi.json", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("PUT", "/readyz", "GET, HEAD"),
    ],
)
def test_unsupported_method_on_docs_and_probes_is_405_with_allow(client, method, path, allow):
    """Regression: a 405 outside the spec's paths answered 500 (an Allow header of None)."""
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def _padded(size: int) -> bytes:
    """A valid patch body padded with whitespace to exactly ``size`` bytes."""
    body = b'{"name": "Renamed"}'
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_64_kib_is_413(client, store, org, admin_key, chunked):
    """A body one byte over 64 KiB is refused, whether or not it declares its length."""
    before = snapshot(store, org["id"])
    body = _padded(64 * 1024 + 1)
    content = iter([body[:40000], body[40000:]]) if chunked else body
    headers = {**bearer(admin_key), "Content-Type": "application/json"}
    response = client.patch("/v1/organization", content=content, headers=headers)
    assert response.status_code == 413
    assert_envelope(response, "PAYLOAD_TOO_LARGE")
    assert snapshot(store, org["id"]) == before


def test_body_of_exactly_64_kib_is_accepted(client, store, org, admin_key):
    """The limit is inclusive: a 65,536-byte body is parsed and applied."""
    headers = {**bearer(admin_key), "Content-Type": "application/json"}
    response = client.patch("/v1/organization", content=_padded(64 * 1024), headers=headers)
    assert response.status_code == 200
    assert store.get_org(org["id"])["name"] == "Renamed"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unknown_query_parameter_is_422(client, store, org, admin_key, operation):
    """A query parameter an operation does not define is refused, not ignored."""
    method, path, body = OPERATIONS[operation]
    before = snapshot(store, org["id"])
    response = client.request(method, f"{path}?org_id=x", json=body, headers=bearer(admin_key))
    assert response.status_code == 422
    assert assert_envelope(response, "VALIDATION_FAILED")["details"] == {
        "org_id": "unknown query parameter"
    }
    assert snapshot(store, org["id"]) == before


def test_server_fault_is_500_without_internals(client, app_store, org, admin_key, monkeypatch):
    """An unexpected exception is 500 INTERNAL in the envelope, with nothing of the fault in it."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals at /srv/orgsettings/db")

    monkeypatch.setattr(app_store, "key_by_hash", fail)
    response = client.get("/v1/organization", headers=bearer(admin_key))
    assert response.status_code == 500
    error = assert_envelope(response, "INTERNAL")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "details" not in error


# -- what every response carries ----------------------------------------------------------------

RESPONSES = {
    "get-org-200": ("GET", "/v1/organization", True),
    "audit-200": ("GET", "/v1/audit_events", True),
    "get-org-401": ("GET", "/v1/organization", False),
    "unknown-404": ("GET", "/v1/nope", True),
    "delete-405": ("DELETE", "/v1/organization", True),
    "limit-422": ("GET", "/v1/audit_events?limit=0", True),
    "healthz": ("GET", "/healthz", False),
    "readyz": ("GET", "/readyz", False),
    "spec": ("GET", "/v1/openapi.json", False),
}


@pytest.mark.parametrize("case", sorted(RESPONSES))
def test_every_response_has_the_common_headers(client, admin_key, case):
    """Request id, no-store and nosniff on successes and errors alike."""
    method, path, authed = RESPONSES[case]
    response = client.request(method, path, headers=bearer(admin_key) if authed else {})
    assert ULID.fullmatch(response.headers["X-Request-Id"])
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("case", ["get-org-401", "unknown-404", "delete-405", "limit-422"])
def test_every_error_body_carries_the_request_id(client, admin_key, case):
    """The envelope's request_id is the X-Request-Id header."""
    method, path, authed = RESPONSES[case]
    response = client.request(method, path, headers=bearer(admin_key) if authed else {})
    assert response.json()["error"]["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "request_id", ["abc-123", "A.b_c-9", "x", "a" * 64, "01JTBQH2FZ8K1RXC0WJ4Z9P3VM"]
)
@pytest.mark.parametrize("authed", [True, False], ids=["200", "401"])
def test_well_formed_client_request_id_is_echoed(client, admin_key, request_id, authed):
    """A client X-Request-Id of 1-64 [A-Za-z0-9._-] comes back as the request id."""
    headers = {**(bearer(admin_key) if authed else {}), "X-Request-Id": request_id}
    response = client.get("/v1/organization", headers=headers)
    assert response.headers["X-Request-Id"] == request_id
    if not authed:
        assert response.json()["error"]["request_id"] == request_id


@pytest.mark.parametrize(
    "request_id", [b"has space", b"a" * 65, b"bad/slash", b"", b'quote"d', "é".encode()]
)
def test_malformed_client_request_id_is_replaced(client, admin_key, request_id):
    """A client X-Request-Id outside the allowed form is replaced by a fresh ULID."""
    headers = {"X-Request-Id": request_id}
    response = client.get("/v1/organization", headers={**bearer(admin_key), **headers})
    assert response.status_code == 200
    assert ULID.fullmatch(response.headers["X-Request-Id"])


def test_patch_event_records_the_client_request_id(client, store, org, admin_key):
    """The audit event of a change carries the request id the client sent."""
    headers = {**bearer(admin_key), "X-Request-Id": "client-req-42"}
    client.patch("/v1/organization", json={"name": "Renamed"}, headers=headers)
    assert store.list_events(org["id"], limit=1)[0][0]["request_id"] == "client-req-42"


@pytest.mark.parametrize(("path", "status"), [("/healthz", "ok"), ("/readyz", "ready")])
def test_probes_answer_without_auth(client, path, status):
    """Liveness and readiness need no key."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": status}


def test_v1_spec_is_served(client):
    """The developer API's OpenAPI document is served without auth."""
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.0")
    assert {"/organization", "/audit_events"} <= set(spec["paths"])


# -- GET /v1/organization ----------------------------------------------------------------------


def test_get_organization_shows_exactly_the_v1_fields(client, org, admin_key):
    """The seed's fields plus tenant_type and updated_at; none of the dashboard's."""
    data = client.get("/v1/organization", headers=bearer(admin_key)).json()["data"]
    assert set(data) == V1_FIELDS
    assert not DASHBOARD_ONLY & set(data)


def test_get_organization_shows_the_defaults(client, org, admin_key):
    """A new organization reads back with every documented default."""
    data = client.get("/v1/organization", headers=bearer(admin_key)).json()["data"]
    assert {k: v for k, v in data.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "Acme Health",
        "billing_email": None,
        "plan": "payg",
        "throughput_tier": 1,
        "tenant_type": "commercial",
        "message_retention_days": 90,
        "mms_retention_days": 30,
        "is_reseller": False,
        "quiet_hours": {"enabled": False, "start": "21:00", "end": "08:00", "mode": "reject"},
        "auto_replies": {"enabled": True, "stop_text": None, "help_text": None, "start_text": None},
        "registration_status": {"brand": "NONE", "brand_count": 0, "campaign_count": 0},
    }
    assert data["id"] == org["id"]


def test_get_organization_etag_is_the_quoted_version(client, store, org, admin_key):
    """The ETag is '"<version>"' and follows the stored version."""
    assert client.get("/v1/organization", headers=bearer(admin_key)).headers["ETag"] == '"1"'
    store.set_operator_fields(org["id"], {"plan": "pro"}, OPERATOR)
    assert client.get("/v1/organization", headers=bearer(admin_key)).headers["ETag"] == '"2"'


def test_get_answers_the_current_record_right_after_a_patch_and_401_right_after_a_revoke(
    client, store, org, admin_key
):
    """The key and its organization are read on every request: nothing is cached."""
    headers = bearer(admin_key)
    first = client.get("/v1/organization", headers=headers)
    assert (first.json()["data"]["name"], first.headers["ETag"]) == ("Acme Health", '"1"')
    patched = client.patch("/v1/organization", json={"name": "Renamed"}, headers=headers)
    assert patched.status_code == 200
    after = client.get("/v1/organization", headers=headers)
    assert after.status_code == 200
    assert after.json() == patched.json()
    assert after.headers["ETag"] == patched.headers["ETag"] == '"2"'
    store.revoke_key(store.key_by_hash(hash_key(admin_key))["id"], OPERATOR)
    revoked = client.get("/v1/organization", headers=headers)
    assert revoked.status_code == 401
    assert assert_envelope(revoked, "UNAUTHORIZED")["message"] == "authentication failed"


def test_get_for_a_key_whose_organization_is_gone_is_404(client, config, org, admin_key):
    """A key pointing at no organization (past the foreign key, as someone with full access
    to the database can) authenticates, and GET finds no organization."""
    with outside(config.database) as conn:
        if POSTGRESQL:
            conn.execute("SET session_replication_role = replica")
            conn.execute("UPDATE api_keys SET organization_id = %s", [MISSING_ORG])
        else:
            conn.execute("UPDATE api_keys SET organization_id = ?", [MISSING_ORG])
    response = client.get("/v1/organization", headers=bearer(admin_key))
    assert response.status_code == 404
    assert assert_envelope(response, "NOT_FOUND")["message"] == "organization not found"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], {"brand": "NONE", "brand_count": 0, "campaign_count": 0}),
        (["REJECTED"], {"brand": "REJECTED", "brand_count": 1, "campaign_count": 1}),
        (["REJECTED", "PENDING"], {"brand": "PENDING", "brand_count": 2, "campaign_count": 2}),
        (
            ["PENDING", "ACTIVE", "REJECTED"],
            {"brand": "ACTIVE", "brand_count": 3, "campaign_count": 3},
        ),
    ],
)
def test_registration_status_is_derived_from_brands(
    client, store, org, admin_key, statuses, expected
):
    """brand is the best status among the org's brands; counts add up."""
    for status in statuses:
        store.create_brand(org_id=org["id"], status=status, campaigns=1, actor=OPERATOR)
    data = client.get("/v1/organization", headers=bearer(admin_key)).json()["data"]
    assert data["registration_status"] == expected


def test_key_use_is_recorded_as_last_used_at(client, store, org, admin_key):
    """Using a key sets its last_used_at."""
    assert store.key_by_hash(hash_key(admin_key))["last_used_at"] is None
    client.get("/v1/organization", headers=bearer(admin_key))
    assert last_used_at(store, admin_key) is not None


def test_refused_key_use_is_not_recorded(client, store, org, make_key):
    """A key refused for lack of scope has not been used."""
    key = make_key(org["id"], "audit:read")
    client.get("/v1/organization", headers=bearer(key))
    assert last_used_at(store, key, timeout=0.5) is None
