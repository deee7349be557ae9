"""/v1/opt_outs: the ledger read, added to and removed from by hand; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import OPERATOR, bearer
from storage import StorageUnavailable

NUMBER = "+14155550123"
URL = f"/v1/opt_outs/{NUMBER}"


@pytest.fixture
def key(org: dict[str, Any], make_key) -> str:
    """A key that reads and writes the ledger and reports inbound messages."""
    return make_key(org["id"], "opt_outs:read", "opt_outs:write", "messaging")


def ledger_events(store, org_id: str) -> list[dict[str, Any]]:
    events, _ = store.list_events(org_id, limit=100)
    return [e for e in events if e["type"].startswith("opt_out.")]


def test_put_creates_then_returns_the_entry_unchanged(client, store, org, key):
    """201 with the new entry and one event; the same PUT again is 200, the same entry, no
    second event."""
    first = client.put(URL, json={"reason": "Asked by phone"}, headers=bearer(key))
    assert first.status_code == 201
    entry = first.json()["data"]
    assert entry["phone_number"] == NUMBER
    assert (entry["source"], entry["keyword"], entry["reason"]) == ("api", None, "Asked by phone")
    again = client.put(URL, headers=bearer(key))
    assert (again.status_code, again.json()["data"]) == (200, entry)
    [event] = ledger_events(store, org["id"])
    assert event["type"] == "opt_out.created"
    assert event["surface"] == "v1"
    assert event["changes"] == {f"opt_outs.{NUMBER}": {"from": None, "to": "api"}}


@pytest.mark.parametrize("path", [URL, "/v1/opt_outs/%2B14155550123"])
def test_the_plus_may_be_sent_encoded(client, store, org, key, path):
    """`+` as is or as %2B names the same entry."""
    store.put_opt_out(org["id"], NUMBER, reason=None, actor=OPERATOR, surface="cli")
    answer = client.get(path, headers=bearer(key))
    assert answer.status_code == 200
    assert answer.json()["data"]["phone_number"] == NUMBER


def test_get_of_a_number_not_opted_out_is_404(client, key):
    answer = client.get(URL, headers=bearer(key))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_delete_returns_the_removed_entry(client, store, org, key):
    entry = client.put(URL, headers=bearer(key)).json()["data"]
    answer = client.delete(URL, headers=bearer(key))
    assert (answer.status_code, answer.json()["data"]) == (200, entry)
    assert store.get_opt_out(org["id"], NUMBER) is None
    assert [e["type"] for e in ledger_events(store, org["id"])] == [
        "opt_out.deleted",
        "opt_out.created",
    ]
    assert client.delete(URL, headers=bearer(key)).status_code == 404


def test_an_entry_the_contact_made_by_keyword_is_not_removed_by_hand(client, store, org, key):
    """409 OPTED_OUT_BY_CONTACT: only the contact opts back in, by texting START."""
    client.post(
        "/v1/inbound_messages",
        json={"id": "SM1", "from": NUMBER, "to": "+14155550100", "body": "STOP"},
        headers=bearer(key),
    )
    answer = client.delete(URL, headers=bearer(key))
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "OPTED_OUT_BY_CONTACT"
    assert "START" in error["message"]
    assert error["details"] == {"phone_number": "opted out by keyword STOP"}
    assert store.get_opt_out(org["id"], NUMBER)["source"] == "keyword"
    assert [e["type"] for e in ledger_events(store, org["id"])] == ["opt_out.created"]


def test_the_list_is_newest_first_and_pages_with_a_cursor(client, store, org, key):
    numbers = [f"+1415555{n:04d}" for n in range(5)]
    for number in numbers:
        store.put_opt_out(org["id"], number, reason=None, actor=OPERATOR, surface="cli")
    first = client.get("/v1/opt_outs?limit=3", headers=bearer(key)).json()
    assert [e["phone_number"] for e in first["data"]] == numbers[:1:-1]
    assert first["has_more"] is True
    second = client.get(
        f"/v1/opt_outs?limit=3&cursor={first['next_cursor']}", headers=bearer(key)
    ).json()
    assert [e["phone_number"] for e in second["data"]] == numbers[1::-1]
    assert (second["has_more"], second["next_cursor"]) == (False, None)


def test_an_audit_events_cursor_is_not_an_opt_outs_cursor(client, store, org, key, make_key):
    """A cursor from another list (or made up) is 422 naming `cursor`."""
    audit_key = make_key(org["id"], "audit:read")
    for n in range(3):
        store.put_opt_out(org["id"], f"+1415555{n:04d}", reason=None, actor=OPERATOR, surface="cli")
    cursor = client.get("/v1/audit_events?limit=1", headers=bearer(audit_key)).json()["next_cursor"]
    answer = client.get(f"/v1/opt_outs?cursor={cursor}", headers=bearer(key))
    assert answer.status_code == 422
    assert "cursor" in answer.json()["error"]["details"]


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("+4402071234567", "canonical E.164 form: use +442071234567"),
        ("+1415555", "not a possible phone number"),
        ("+999123456789", "unknown country calling code"),
    ],
)
def test_an_impossible_number_is_422_naming_the_field(client, store, org, key, number, detail):
    """Past the spec's pattern, phonenumbers decides; nothing is written."""
    for method in ("get", "put", "delete"):
        answer = client.request(method.upper(), f"/v1/opt_outs/{number}", headers=bearer(key))
        assert answer.status_code == 422, method
        error = answer.json()["error"]
        assert error["code"] == "VALIDATION_FAILED"
        assert detail in error["details"]["phone_number"]
    assert ledger_events(store, org["id"]) == []


@pytest.mark.parametrize(
    ("method", "scope"),
    [("GET", "opt_outs:write"), ("PUT", "opt_outs:read"), ("DELETE", "opt_outs:read")],
)
def test_each_operation_needs_its_scope(client, org, make_key, method, scope):
    answer = client.request(method, URL, headers=bearer(make_key(org["id"], scope)))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "FORBIDDEN"


def test_a_database_fault_is_503_and_records_nothing(
    client, app_store, store, org, key, monkeypatch
):
    """A write the database cannot take: 503 with Retry-After; then the retry succeeds once."""

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("the database is busy")

    monkeypatch.setattr(app_store, "put_opt_out", unavailable)
    answer = client.put(URL, headers=bearer(key))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    assert store.get_opt_out(org["id"], NUMBER) is None
    monkeypatch.undo()
    assert client.put(URL, headers=bearer(key)).status_code == 201
    assert client.put(URL, headers=bearer(key)).status_code == 200
    assert len(ledger_events(store, org["id"])) == 1
