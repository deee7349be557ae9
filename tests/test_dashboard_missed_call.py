"""Dashboard missed-call message: seed 001 bodies, partial updates, placeholders, roles, audit."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import MISSING_ORG, OPERATOR, ROLE_MATRIX

SEED_MESSAGE = "Hi {{contactName}}, sorry we missed your call. We'll get back to you shortly."


@pytest.fixture
def admin(auth, org) -> dict[str, str]:
    """Headers for an ADMIN of ``org``."""
    return auth("ADMIN", org["id"])


@pytest.fixture
def configured(store, org) -> dict[str, Any]:
    """``org`` with a message set and the auto-message enabled."""
    org, _ = store.modify_org(
        org["id"],
        lambda o: (
            {**o, "missed_call_message": "Hello", "missed_call_auto_message_enabled": True},
            None,
        ),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )
    return org


def url(org_id: str) -> str:
    """The missed-call message path of an organization."""
    return f"/api/organizations/{org_id}/missed-call-message"


def updates(store, org_id: str) -> list[dict[str, Any]]:
    """The organization.updated audit events of an org made through the dashboard."""
    events, _ = store.list_events(org_id, limit=100)
    return [e for e in events if e["type"] == "organization.updated" and e["surface"] != "cli"]


def settings(store, org_id: str) -> tuple[str | None, bool]:
    """The stored (message, enabled) pair."""
    org = store.get_org(org_id)
    return org["missed_call_message"], org["missed_call_auto_message_enabled"]


def test_get_answers_the_defaults(client, org, auth):
    response = client.get(url(org["id"]), headers=auth("USER", org["id"]))
    assert response.status_code == 200
    assert response.json() == {"missedCallMessage": None, "missedCallAutoMessageEnabled": False}


def test_put_of_the_seed_example_answers_the_seed_body(client, store, org, admin):
    body = {"missedCallMessage": SEED_MESSAGE, "missedCallAutoMessageEnabled": True}
    response = client.put(url(org["id"]), json=body, headers=admin)
    assert response.status_code == 200
    assert response.json() == body
    assert settings(store, org["id"]) == (SEED_MESSAGE, True)
    assert client.get(url(org["id"]), headers=admin).json() == body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"missedCallMessage": "New text"}, ("New text", True)),
        ({"missedCallAutoMessageEnabled": False}, ("Hello", False)),
        ({"missedCallMessage": "", "missedCallAutoMessageEnabled": False}, (None, False)),
        ({"missedCallMessage": "x" * 500}, ("x" * 500, True)),
        ({"missedCallMessage": "Other", "extra": [1, 2]}, ("Other", True)),
    ],
)
def test_partial_updates_keep_the_omitted_field(client, store, configured, admin, body, expected):
    response = client.put(url(configured["id"]), json=body, headers=admin)
    assert response.status_code == 200
    message, enabled = expected
    assert response.json() == {
        "missedCallMessage": message,
        "missedCallAutoMessageEnabled": enabled,
    }
    assert settings(store, configured["id"]) == expected


def test_empty_string_clears_the_message(client, store, org, admin):
    client.put(url(org["id"]), json={"missedCallMessage": "Soon"}, headers=admin)
    response = client.put(url(org["id"]), json={"missedCallMessage": ""}, headers=admin)
    assert response.status_code == 200
    assert response.json()["missedCallMessage"] is None
    assert settings(store, org["id"]) == (None, False)


def test_clearing_the_message_of_an_enabled_auto_message_is_allowed(
    client, store, configured, admin
):
    """Only turning the auto-message on needs a message; clearing keeps the flag as it is."""
    response = client.put(url(configured["id"]), json={"missedCallMessage": ""}, headers=admin)
    assert response.status_code == 200
    assert response.json() == {"missedCallMessage": None, "missedCallAutoMessageEnabled": True}
    assert settings(store, configured["id"]) == (None, True)


@pytest.mark.parametrize(
    "placeholder", ["{{contactName}}", "{{agentName}}", "{{organizationName}}"]
)
def test_each_placeholder_is_allowed(client, store, org, admin, placeholder):
    message = f"Hi from {placeholder}!"
    response = client.put(url(org["id"]), json={"missedCallMessage": message}, headers=admin)
    assert response.status_code == 200
    assert settings(store, org["id"]) == (message, False)


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ("Hi {{customerName}}", "{{customerName}}"),
        ("Hi {{ contactName }}", "{{ contactName }}"),
        ("Hi {{contactname}}", "{{contactname}}"),
        ("Hi {{}} there", "{{}}"),
        ("{{agentName}} and {{phone}}", "{{phone}}"),
    ],
)
def test_an_unknown_placeholder_is_400_naming_it(client, store, configured, admin, message, named):
    before = store.get_org(configured["id"])
    response = client.put(url(configured["id"]), json={"missedCallMessage": message}, headers=admin)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "missedCallMessage contains an unknown placeholder"
    assert f"unknown placeholder {named};" in body["details"]
    assert store.get_org(configured["id"]) == before
    assert updates(store, configured["id"]) == []


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        ({"missedCallMessage": "x" * 501}, "Validation error", "at most 500 characters"),
        ({"missedCallMessage": 5}, "Validation error", "missedCallMessage: must be a string"),
        ({"missedCallMessage": None}, "Validation error", "missedCallMessage: must not be null"),
        ({"missedCallAutoMessageEnabled": "yes"}, "Validation error", "must be a boolean"),
    ],
)
def test_invalid_bodies_are_400_and_change_nothing(
    client, store, configured, admin, body, error, detail
):
    before = store.get_org(configured["id"])
    response = client.put(url(configured["id"]), json=body, headers=admin)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert detail in response.json()["details"]
    assert store.get_org(configured["id"]) == before
    assert updates(store, configured["id"]) == []


@pytest.mark.parametrize(
    "body",
    [
        {"missedCallAutoMessageEnabled": True},
        {"missedCallMessage": "", "missedCallAutoMessageEnabled": True},
    ],
)
def test_enabling_while_the_message_is_null_is_400(client, store, org, admin, body):
    response = client.put(url(org["id"]), json=body, headers=admin)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Cannot enable the missed call auto-message without a message",
        "details": (
            "missedCallAutoMessageEnabled cannot be true while missedCallMessage is null; "
            "set missedCallMessage in the same request or first"
        ),
    }
    assert settings(store, org["id"]) == (None, False)
    assert updates(store, org["id"]) == []


def test_enabling_after_setting_a_message_is_allowed(client, store, org, admin):
    client.put(url(org["id"]), json={"missedCallMessage": "Call you back"}, headers=admin)
    response = client.put(
        url(org["id"]), json={"missedCallAutoMessageEnabled": True}, headers=admin
    )
    assert response.status_code == 200
    assert settings(store, org["id"]) == ("Call you back", True)


@pytest.mark.parametrize(("role", "own_org", "get_status", "put_status"), ROLE_MATRIX)
def test_role_matrix(client, store, org, auth, role, own_org, get_status, put_status):
    other = store.create_org(name="Other Org", actor=OPERATOR)
    headers = auth(role, (org if own_org else other)["id"] if role != "SUPERADMIN" else None)
    assert client.get(url(org["id"]), headers=headers).status_code == get_status
    put = client.put(url(org["id"]), json={"missedCallMessage": "Hi"}, headers=headers)
    assert put.status_code == put_status
    if put_status == 403:
        assert put.json()["error"] == "Forbidden"
        assert settings(store, org["id"]) == (None, False)
        assert updates(store, org["id"]) == []


@pytest.mark.parametrize("role", ["ADMIN", "USER"])
def test_member_of_another_org_gets_403_for_a_missing_org(client, org, auth, role):
    response = client.put(
        url(MISSING_ORG), json={"missedCallMessage": "Hi"}, headers=auth(role, org["id"])
    )
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_superadmin_gets_the_seed_404_for_a_missing_org(client, auth, method):
    response = client.request(
        method, url(MISSING_ORG), json={"missedCallMessage": "Hi"}, headers=auth("SUPERADMIN", None)
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": "Organization not found",
        "details": "No organization exists with the provided id",
    }


def test_a_bad_body_is_400_before_a_wrong_org(client, store, org, auth):
    other = store.create_org(name="Other Org", actor=OPERATOR)
    body = {"missedCallMessage": 5}
    response = client.put(url(org["id"]), json=body, headers=auth("ADMIN", other["id"]))
    assert response.status_code == 400


def test_an_effective_change_writes_one_dashboard_audit_event(client, store, org, auth):
    headers = auth("SUPERADMIN", None, sub="root-7")
    body = {"missedCallMessage": SEED_MESSAGE, "missedCallAutoMessageEnabled": True}
    assert client.put(url(org["id"]), json=body, headers=headers).status_code == 200
    [event] = updates(store, org["id"])
    assert event["surface"] == "dashboard"
    assert event["actor"] == {"type": "user", "id": "root-7", "role": "SUPERADMIN"}
    assert event["changes"] == {
        "missed_call_message": {"from": None, "to": SEED_MESSAGE},
        "missed_call_auto_message_enabled": {"from": False, "to": True},
    }


def test_a_no_op_writes_no_event(client, store, configured, admin):
    body = {"missedCallMessage": "Hello", "missedCallAutoMessageEnabled": True}
    response = client.put(url(configured["id"]), json=body, headers=admin)
    assert response.status_code == 200
    assert updates(store, configured["id"]) == []
    assert store.get_org(configured["id"])["version"] == configured["version"]


def test_an_unexpected_fault_is_the_seed_500(client, app_store, org, admin, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(app_store, "modify_org", broken)
    response = client.put(url(org["id"]), json={"missedCallMessage": "Hi"}, headers=admin)
    assert response.status_code == 500
    assert response.json() == {"error": "Failed to update configuration"}
