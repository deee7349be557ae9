"""Dashboard missed-call preview: the text as a caller would get it, roles, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import MISSING_ORG, OPERATOR

TEMPLATE = "Hi {{contactName}}, {{agentName}} at {{organizationName}} will call you back."


def url(org_id: str) -> str:
    """The preview path of an organization."""
    return f"/api/organizations/{org_id}/missed-call-message/preview"


def store_message(store, org_id: str, message: str | None) -> dict[str, Any]:
    org, _ = store.modify_org(
        org_id,
        lambda o: ({**o, "missed_call_message": message}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )
    return org


def test_the_stored_message_with_fallbacks_and_nothing_changes(client, store, org, auth):
    stored = store_message(store, org["id"], TEMPLATE)
    answer = client.post(url(org["id"]), json={}, headers=auth("USER", org["id"]))
    assert answer.status_code == 200
    assert answer.json() == {
        "text": "Hi there, our team at Acme Health will call you back.",
        "encoding": "GSM-7",
        "segments": 1,
        "unknownPlaceholders": [],
    }
    after = store.get_org(org["id"])
    assert (after["version"], after["missed_call_message"]) == (stored["version"], TEMPLATE)


def test_a_given_message_and_names_are_cleaned(client, org, auth):
    body = {"missedCallMessage": TEMPLATE, "contactName": "Zoë\tA.", "agentName": "x" * 60}
    data = client.post(url(org["id"]), json=body, headers=auth("ADMIN", org["id"])).json()
    assert data["text"] == f"Hi Zoë A., {'x' * 40} at Acme Health will call you back."
    assert (data["encoding"], data["segments"]) == ("UCS-2", 2)  # ë is not in GSM 03.38
    long = client.post(
        url(org["id"]), json={"missedCallMessage": "🙂" * 70}, headers=auth("ADMIN", org["id"])
    ).json()
    assert (long["encoding"], long["segments"]) == ("UCS-2", 3)


def test_unknown_tokens_are_listed_and_kept(client, org, auth):
    body = {"missedCallMessage": "Hi {{customerName}} {{ contactName }} {{customerName}}"}
    data = client.post(url(org["id"]), json=body, headers=auth("ADMIN", org["id"])).json()
    assert data["unknownPlaceholders"] == ["{{customerName}}", "{{ contactName }}"]
    assert data["text"] == body["missedCallMessage"]


@pytest.mark.parametrize("body", [{}, {"missedCallMessage": ""}, {"missedCallMessage": " \n"}])
def test_no_message_is_null(client, org, auth, body):
    data = client.post(url(org["id"]), json=body, headers=auth("ADMIN", org["id"])).json()
    assert data == {"text": None, "encoding": None, "segments": None, "unknownPlaceholders": []}


@pytest.mark.parametrize(
    ("role", "member", "status"),
    [("USER", True, 200), ("ADMIN", False, 403), ("USER", False, 403), ("SUPERADMIN", False, 200)],
)
def test_roles(client, org, auth, store, role, member, status):
    other = store.create_org(name="Other", actor=OPERATOR)
    headers = auth(role, org["id"] if member else (None if role == "SUPERADMIN" else other["id"]))
    assert client.post(url(org["id"]), json={}, headers=headers).status_code == status


def test_unknown_organization_is_404_for_a_superadmin(client, auth):
    answer = client.post(url(MISSING_ORG), json={}, headers=auth("SUPERADMIN", None))
    assert answer.status_code == 404
    assert answer.json()["error"] == "Organization not found"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"missedCallMessage": "x" * 501}, "missedCallMessage: must be at most 500 characters"),
        ({"contactName": 7}, "contactName: must be a string"),
        ({"agentName": "x" * 101}, "agentName: must be at most 100 characters"),
    ],
)
def test_bad_body_is_400_before_403(client, store, auth, body, detail):
    other = store.create_org(name="Other", actor=OPERATOR)
    answer = client.post(url(MISSING_ORG), json=body, headers=auth("ADMIN", other["id"]))
    assert answer.status_code == 400
    assert answer.json() == {"error": "Validation error", "details": detail}
