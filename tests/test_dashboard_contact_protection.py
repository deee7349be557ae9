"""Dashboard contact protection settings: seed 000 bodies, validation, roles, order, audit."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import MISSING_ORG, OPERATOR, ROLE_MATRIX, bearer

#: The published 400 sentence (PRODUCT.md; the PUT's x-error-sentences in the spec).
CONTACT_PROTECTION_SENTENCE = (
    "contactProtectionPeriod must be a non-negative integer between 0 and 720 hours"
)


def url(org_id: str) -> str:
    """The contact protection settings path of an organization."""
    return f"/api/organizations/{org_id}/contact-protection-settings"


def updates(store, org_id: str) -> list[dict[str, Any]]:
    """The organization.updated audit events of an org, newest first."""
    events, _ = store.list_events(org_id, limit=100)
    return [e for e in events if e["type"] == "organization.updated"]


def test_get_answers_the_default_period(client, org, auth):
    response = client.get(url(org["id"]), headers=auth("USER", org["id"]))
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"contactProtectionPeriod": 0}}


def test_put_answers_exactly_the_seed_body_and_stores_the_period(client, store, org, auth):
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": 48}, headers=auth("ADMIN", org["id"])
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Contact protection settings updated",
        "data": {"contactProtectionPeriod": 48},
    }
    assert store.get_org(org["id"])["contact_protection_period"] == 48
    got = client.get(url(org["id"]), headers=auth("USER", org["id"]))
    assert got.json() == {"success": True, "data": {"contactProtectionPeriod": 48}}


@pytest.mark.parametrize("period", [0, 1, 720])
def test_put_accepts_the_bounds(client, store, org, auth, period):
    store.modify_org(
        org["id"],
        lambda o: ({**o, "contact_protection_period": 5}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": period}, headers=auth("ADMIN", org["id"])
    )
    assert response.status_code == 200
    assert store.get_org(org["id"])["contact_protection_period"] == period


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "contactProtectionPeriod: is required"),
        ({"contactProtectionPeriod": -1}, "contactProtectionPeriod: must be between 0 and 720"),
        ({"contactProtectionPeriod": 721}, "contactProtectionPeriod: must be between 0 and 720"),
        ({"contactProtectionPeriod": 48.5}, "contactProtectionPeriod: must be an integer"),
        ({"contactProtectionPeriod": 48.0}, "contactProtectionPeriod: must be an integer"),
        ({"contactProtectionPeriod": True}, "contactProtectionPeriod: must be an integer"),
        ({"contactProtectionPeriod": "48"}, "contactProtectionPeriod: must be an integer"),
        ({"contactProtectionPeriod": None}, "contactProtectionPeriod: must not be null"),
        ({"period": 48}, "contactProtectionPeriod: is required"),
    ],
)
def test_put_refuses_an_invalid_period_and_changes_nothing(client, store, org, auth, body, detail):
    before = store.get_org(org["id"])
    response = client.put(url(org["id"]), json=body, headers=auth("ADMIN", org["id"]))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": CONTACT_PROTECTION_SENTENCE, "details": detail}
    assert store.get_org(org["id"]) == before
    assert updates(store, org["id"]) == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"[48]", "application/json", 400),
        (b"contactProtectionPeriod=48", "application/x-www-form-urlencoded", 415),
        (
            b'{"contactProtectionPeriod": 48, "pad": "' + b"x" * 70_000 + b'"}',
            "application/json",
            413,
        ),
    ],
)
def test_put_refuses_unusable_bodies_in_the_dashboard_shape(
    client, store, org, auth, content, content_type, status
):
    headers = {**auth("ADMIN", org["id"]), "Content-Type": content_type}
    response = client.put(url(org["id"]), content=content, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error", "details"}
    assert store.get_org(org["id"])["contact_protection_period"] == 0
    assert updates(store, org["id"]) == []


@pytest.mark.parametrize("content", [b"[48]", b"48", b'"48"', b"null"])
def test_a_body_that_is_not_an_object_gets_the_seed_sentence(client, store, org, auth, content):
    """No object means no valid period: the published 400 sentence, not a generic one."""
    headers = {**auth("ADMIN", org["id"]), "Content-Type": "application/json"}
    response = client.put(url(org["id"]), content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == CONTACT_PROTECTION_SENTENCE
    assert updates(store, org["id"]) == []


def test_put_ignores_unknown_fields(client, store, org, auth):
    body = {"contactProtectionPeriod": 24, "unknownField": {"nested": True}}
    response = client.put(url(org["id"]), json=body, headers=auth("ADMIN", org["id"]))
    assert response.status_code == 200
    assert response.json()["data"] == {"contactProtectionPeriod": 24}
    assert store.get_org(org["id"])["contact_protection_period"] == 24


@pytest.mark.parametrize(("role", "own_org", "get_status", "put_status"), ROLE_MATRIX)
def test_role_matrix(client, store, org, auth, role, own_org, get_status, put_status):
    other = store.create_org(name="Other Org", actor=OPERATOR)
    headers = auth(role, (org if own_org else other)["id"] if role != "SUPERADMIN" else None)
    assert client.get(url(org["id"]), headers=headers).status_code == get_status
    put = client.put(url(org["id"]), json={"contactProtectionPeriod": 12}, headers=headers)
    assert put.status_code == put_status
    if put_status == 403:
        assert put.json()["error"] == "Forbidden"
        assert store.get_org(org["id"])["contact_protection_period"] == 0
        assert updates(store, org["id"]) == []


@pytest.mark.parametrize("role", ["ADMIN", "USER"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_member_of_another_org_gets_403_even_for_a_missing_org(client, org, auth, role, method):
    response = client.request(
        method, url(MISSING_ORG), json={"contactProtectionPeriod": 1}, headers=auth(role, org["id"])
    )
    assert response.status_code == 403
    assert response.json()["error"] == "Forbidden"


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_superadmin_gets_the_seed_404_for_a_missing_org(client, auth, method):
    response = client.request(
        method,
        url(MISSING_ORG),
        json={"contactProtectionPeriod": 1},
        headers=auth("SUPERADMIN", None),
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": "Organization not found",
        "details": "No organization exists with the provided id",
    }


def test_superadmin_with_an_org_claim_may_change_any_org(client, store, org, auth):
    other = store.create_org(name="Other Org", actor=OPERATOR)
    headers = auth("SUPERADMIN", other["id"])
    response = client.put(url(org["id"]), json={"contactProtectionPeriod": 7}, headers=headers)
    assert response.status_code == 200
    assert store.get_org(org["id"])["contact_protection_period"] == 7


def test_a_bad_token_is_401_before_a_bad_body(client, org):
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": "x"}, headers=bearer("not-a-jwt")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_bad_body_is_400_before_a_wrong_org(client, store, org, auth):
    other = store.create_org(name="Other Org", actor=OPERATOR)
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": 999}, headers=auth("ADMIN", other["id"])
    )
    assert response.status_code == 400
    assert response.json()["error"] == CONTACT_PROTECTION_SENTENCE


def test_an_effective_change_writes_one_dashboard_audit_event(client, store, org, auth):
    response = client.put(
        url(org["id"]),
        json={"contactProtectionPeriod": 72},
        headers={**auth("ADMIN", org["id"], sub="user-42"), "X-Request-Id": "req-cp-1"},
    )
    assert response.status_code == 200
    [event] = updates(store, org["id"])
    assert event["surface"] == "dashboard"
    assert event["actor"] == {"type": "user", "id": "user-42", "role": "ADMIN"}
    assert event["request_id"] == "req-cp-1"
    assert event["changes"] == {"contact_protection_period": {"from": 0, "to": 72}}
    assert store.get_org(org["id"])["version"] == org["version"] + 1


def test_setting_the_current_value_writes_no_event(client, store, org, auth):
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": 0}, headers=auth("ADMIN", org["id"])
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"contactProtectionPeriod": 0}
    assert updates(store, org["id"]) == []
    assert store.get_org(org["id"])["version"] == org["version"]


def test_an_unexpected_fault_is_a_bare_500(client, app_store, org, auth, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(app_store, "modify_org", broken)
    response = client.put(
        url(org["id"]), json={"contactProtectionPeriod": 1}, headers=auth("ADMIN", org["id"])
    )
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error"}
