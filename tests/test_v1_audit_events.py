"""GET /v1/audit_events: order, limits, cursor paging, isolation, and append-only storage."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from conftest import DATABASE_ERRORS, OPERATOR, POSTGRESQL, bearer, outside

URL = "/v1/audit_events"
EVENT_FIELDS = {
    "id",
    "prev_hash",
    "hash",
    "type",
    "organization_id",
    "actor",
    "surface",
    "request_id",
    "changes",
    "attestation",
    "created_at",
}


def rename(store, org_id: str, times: int) -> None:
    """Make ``times`` effective changes straight through the store (one event each)."""
    for n in range(times):
        store.modify_org(
            org_id,
            lambda org, n=n: ({**org, "name": f"Name {n}"}, None),
            actor=OPERATOR,
            surface="cli",
            request_id=None,
        )


def all_events(store, org_id: str) -> list[dict[str, Any]]:
    """Every event of an org as stored, newest first."""
    return store.list_events(org_id, limit=1000)[0]


def get(client, key: str, query: str = ""):
    """GET the audit list with a query string."""
    return client.get(f"{URL}{query}", headers=bearer(key))


def test_events_are_newest_first(client, store, org, admin_key):
    """The latest change is the first event; creation is the last."""
    client.patch("/v1/organization", json={"name": "First"}, headers=bearer(admin_key))
    client.patch("/v1/organization", json={"name": "Second"}, headers=bearer(admin_key))
    data = get(client, admin_key).json()["data"]
    assert [e["type"] for e in data] == [
        "organization.updated",
        "organization.updated",
        "api_key.created",
        "organization.created",
    ]
    assert data[0]["changes"] == {"name": {"from": "First", "to": "Second"}}
    assert [e["created_at"] for e in data] == sorted((e["created_at"] for e in data), reverse=True)


def test_event_has_every_documented_field(client, org, admin_key):
    """Each event carries exactly the AuditEvent fields."""
    data = get(client, admin_key).json()["data"]
    assert all(set(event) == EVENT_FIELDS for event in data)


def test_creation_event_is_recorded(client, org, admin_key):
    """organization.created names the operator and the initial operator fields."""
    created = get(client, admin_key).json()["data"][-1]
    assert created["type"] == "organization.created"
    assert created["actor"] == OPERATOR
    assert created["surface"] == "cli"
    assert created["changes"]["name"] == {"from": None, "to": "Acme Health"}


def test_default_limit_is_20(client, store, org, admin_key):
    """Without limit, a page holds 20 events and says more remain."""
    rename(store, org["id"], 25)
    body = get(client, admin_key).json()
    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert body["next_cursor"]


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(client, store, org, admin_key, limit):
    """limit 1 and 100 are allowed and respected."""
    rename(store, org["id"], 120)
    assert len(get(client, admin_key, f"?limit={limit}").json()["data"]) == limit


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "2.5", ""])
def test_limit_out_of_bounds_is_422(client, org, admin_key, limit):
    """limit outside 1-100, or not an integer, is 422 naming limit."""
    response = get(client, admin_key, f"?limit={limit}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert list(error["details"]) == ["limit"]


def test_short_trail_is_one_page(client, org, admin_key):
    """Fewer events than the limit: no more pages, next_cursor null."""
    body = get(client, admin_key).json()
    assert (len(body["data"]), body["has_more"], body["next_cursor"]) == (2, False, None)


@pytest.mark.parametrize(("changes", "limit"), [(8, 5), (8, 1), (8, 3), (0, 2), (18, 20)])
def test_cursor_paging_walks_every_event_exactly_once(
    client, store, org, admin_key, changes, limit
):
    """Following next_cursor yields every event once, in order, ending with a null cursor."""
    rename(store, org["id"], changes)
    expected = [e["id"] for e in all_events(store, org["id"])]
    seen: list[str] = []
    query = f"?limit={limit}"
    while True:
        body = get(client, admin_key, query).json()
        seen += [e["id"] for e in body["data"]]
        assert len(body["data"]) <= limit
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        assert body["next_cursor"]
        query = f"?limit={limit}&cursor={body['next_cursor']}"
    assert seen == expected


def test_events_written_during_paging_do_not_shift_older_pages(client, store, org, admin_key):
    """A change made between pages does not repeat or skip older events."""
    rename(store, org["id"], 6)
    expected = [e["id"] for e in all_events(store, org["id"])]
    first = get(client, admin_key, "?limit=4").json()
    rename(store, org["id"], 1)
    second = get(client, admin_key, f"?limit=100&cursor={first['next_cursor']}").json()
    assert [e["id"] for e in first["data"] + second["data"]] == expected


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        _b64("ae1:abc"),
        _b64("ae1:0"),
        _b64("ae1:-5"),
        _b64("xx1:5"),
        _b64("ae1:" + "9" * 30),
        "x" * 201,
    ],
)
def test_forged_cursor_is_422(client, org, admin_key, cursor):
    """A cursor this API did not hand out is 422 naming cursor."""
    response = get(client, admin_key, f"?cursor={cursor}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert list(error["details"]) == ["cursor"]


def test_empty_cursor_is_422(client, org, admin_key):
    """An empty cursor is not a cursor."""
    response = get(client, admin_key, "?cursor=")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.parametrize("query", ["?page=2", "?limit=5&offset=3", "?org_id=x"])
def test_unknown_query_parameter_is_422(client, org, admin_key, query):
    """A query parameter the operation does not define is refused, not ignored."""
    response = get(client, admin_key, query)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert set(error["details"].values()) == {"unknown query parameter"}


def test_other_orgs_events_never_appear(client, store, org, admin_key, make_key):
    """Paging through one org's trail shows only that org's events."""
    other = store.create_org(name="Globex", actor=OPERATOR)
    make_key(other["id"], "org:read")
    rename(store, other["id"], 5)
    rename(store, org["id"], 2)
    data = get(client, admin_key, "?limit=100").json()["data"]
    assert {e["organization_id"] for e in data} == {org["id"]}
    assert [e["id"] for e in data] == [e["id"] for e in all_events(store, org["id"])]


def test_another_orgs_cursor_reveals_nothing_of_it(client, store, org, admin_key, make_key):
    """Reusing a cursor from another org's trail still lists only the key's own org."""
    other = store.create_org(name="Globex", actor=OPERATOR)
    other_key = make_key(other["id"], "audit:read")
    rename(store, other["id"], 5)
    cursor = get(client, other_key, "?limit=1").json()["next_cursor"]
    data = get(client, admin_key, f"?cursor={cursor}").json()["data"]
    assert {e["organization_id"] for e in data} <= {org["id"]}


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_events",
        "UPDATE audit_events SET changes = '{}'",
        "UPDATE audit_events SET attestation = 'forged'",
        *(["TRUNCATE audit_events", "TRUNCATE audit_events CASCADE"] if POSTGRESQL else []),
    ],
)
def test_audit_events_are_append_only(config, store, org, sql):
    """The database itself refuses to change, delete or truncate an event, whoever connects
    (the PostgreSQL test role is a superuser)."""
    before = all_events(store, org["id"])
    with (
        outside(config.database) as conn,
        pytest.raises(DATABASE_ERRORS, match="append-only"),
    ):
        conn.execute(sql)
    assert all_events(store, org["id"]) == before
