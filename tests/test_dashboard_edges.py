"""Dashboard edges found by an independent Schemathesis run, and the service index."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from conftest import JWT_SECRET, OPERATOR, bearer

PATHS = ("contact-protection-settings", "missed-call-message")
BODIES = {
    "contact-protection-settings": {"contactProtectionPeriod": 5},
    "missed-call-message": {"missedCallMessage": "hi"},
}


def events(store, org_id: str) -> list[dict[str, Any]]:
    """The organization's audit trail, newest first."""
    return store.list_events(org_id, limit=100)[0]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("org_id", ["a%0Ab", "%0A", "a%0Db", "%0D%0A"])
def test_an_id_with_a_line_break_is_an_unknown_id(client, org, auth, path, method, org_id):
    """Regression: a newline in the id answered 405; it is an id like any unknown one."""
    url = f"/api/organizations/{org_id}/{path}"
    body = BODIES[path] if method == "PUT" else None
    response = client.request(method, url, json=body, headers=auth("SUPERADMIN", None))
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "Organization not found"
    response = client.request(method, url, json=body, headers=auth("ADMIN", org["id"]))
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'{"somethingElse": 1}', b'{"a\\u0000b": 1}', b'{"\\ud800": "\\ud800"}'],
)
def test_a_missed_call_put_with_neither_field_is_a_no_op(client, store, org, auth, raw):
    """Neither field (only unknown ones, whatever their names hold): 200, current settings,
    no change and no audit event."""
    before, trail = store.get_org(org["id"]), events(store, org["id"])
    response = client.put(
        f"/api/organizations/{org['id']}/missed-call-message",
        content=raw,
        headers={**auth("ADMIN", org["id"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"missedCallMessage": None, "missedCallAutoMessageEnabled": False}
    assert store.get_org(org["id"]) == before
    assert events(store, org["id"]) == trail


def test_an_unknown_field_with_a_nul_in_its_name_is_ignored_beside_a_change(
    client, store, org, auth
) -> None:
    """An ignored field is ignored whatever its name holds; the known field still applies."""
    response = client.put(
        f"/api/organizations/{org['id']}/contact-protection-settings",
        content=b'{"x\\u0000y": 1, "contactProtectionPeriod": 7}',
        headers={**auth("ADMIN", org["id"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert store.get_org(org["id"])["contact_protection_period"] == 7


@pytest.mark.parametrize(("role", "status"), [("USER", 403), ("SUPERADMIN", 404)])
def test_an_empty_missed_call_put_is_still_a_write_for_permissions(
    client, store, auth, role, status
) -> None:
    """A USER may not PUT even nothing (403); a SUPERADMIN naming no organization gets 404."""
    org = store.create_org(name="Other", actor=OPERATOR)
    target = org["id"] if role == "USER" else "01890a5d-ac96-774b-bcce-b302099a8057"
    response = client.put(
        f"/api/organizations/{target}/missed-call-message",
        json={},
        headers=auth(role, org["id"] if role == "USER" else None),
    )
    assert response.status_code == status


def test_the_root_is_an_index_of_specs_uis_and_probes(client) -> None:
    """GET / names both specs, both UIs and the probes, and every link answers 200."""
    response = client.get("/")
    assert response.status_code == 200
    index = response.json()
    links = [*index["specs"].values(), *index["docs"].values(), *index["probes"].values()]
    assert {"/v1/openapi.json", "/api/openapi.json", "/v1/ui/", "/api/ui/"} <= set(links)
    for link in links:
        assert client.get(link).status_code == 200, link


def test_a_token_with_an_overlong_sub_is_refused(client, org) -> None:
    """The sub becomes the audit actor's id, which the spec bounds to 255 characters."""
    claims = {"sub": "u" * 256, "role": "SUPERADMIN", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    response = client.get(
        f"/api/organizations/{org['id']}/contact-protection-settings",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert "at most 255 characters" in response.json()["details"]


@pytest.mark.parametrize(
    ("surface", "path"),
    [
        ("v1", "/v1/organization"),
        ("dashboard", "/api/organizations/{org}/contact-protection-settings"),
    ],
)
def test_error_details_stay_small_whatever_the_body_holds(
    client, org, admin_key, auth, surface, path
) -> None:
    """Regression: a 64 KiB body of NUL-named fields under one long name answered ~70 MB."""
    children = ", ".join(f'"{n}\\u0000": 1' for n in range(2000))
    body = ('{"' + "k" * 30000 + '": {' + children + "}}").encode()
    assert len(body) < 64 * 1024
    headers = bearer(admin_key) if surface == "v1" else auth("ADMIN", org["id"])
    response = client.request(
        "PATCH" if surface == "v1" else "PUT",
        path.format(org=org["id"]),
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert len(response.content) < 16 * 1024
    if surface == "v1":
        assert len(response.json()["error"]["details"]) <= 51


@pytest.mark.parametrize("sub", ["\ud800", "a\x00b"])
def test_a_token_whose_sub_is_not_text_is_refused(client, org, sub) -> None:
    """A sub holding a lone surrogate or a NUL is 401, never a 500 at the audit write."""
    claims = {"sub": sub, "role": "SUPERADMIN", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    response = client.put(
        f"/api/organizations/{org['id']}/contact-protection-settings",
        json={"contactProtectionPeriod": 3},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
