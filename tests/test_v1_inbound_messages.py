"""POST /v1/inbound_messages: STOP, START and HELP against the ledger, replies, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import OPERATOR, bearer

URL = "/v1/inbound_messages"
CONTACT = "+14155550123"
OUR_NUMBER = "+14155550100"


@pytest.fixture
def key(org: dict[str, Any], make_key) -> str:
    """The message pipeline's key."""
    return make_key(org["id"], "messaging")


def send(client, key: str, body: str, message_id: str, sender: str = CONTACT):
    """Report one inbound message."""
    payload = {"id": message_id, "from": sender, "to": OUR_NUMBER, "body": body}
    return client.post(URL, json=payload, headers=bearer(key))


def set_auto_replies(store, org_id: str, **block: Any) -> None:
    store.modify_org(
        org_id,
        lambda o: ({**o, "auto_replies": {**o["auto_replies"], **block}}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )


def ledger_events(store, org_id: str) -> list[str]:
    events, _ = store.list_events(org_id, limit=100)
    return [e["type"] for e in events if e["type"].startswith("opt_out.")]


def test_stop_opts_out_and_confirms_once(client, store, org, key):
    """STOP: the entry (source keyword, the message id), one event, the default reply with the
    organization's name; a second STOP gets no second confirmation."""
    answer = send(client, key, "Stop. Thank you", "SM1")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data == {
        "id": "SM1",
        "from": CONTACT,
        "keyword": "STOP",
        "category": "opt_out",
        "action": "opted_out",
        "reply": {
            "text": "Acme Health: You are unsubscribed and will receive no more messages."
            " Reply START to resubscribe.",
            "encoding": "GSM-7",
            "segments": 1,
        },
    }
    entry = store.get_opt_out(org["id"], CONTACT)
    assert (entry["source"], entry["keyword"], entry["inbound_message_id"]) == (
        "keyword",
        "STOP",
        "SM1",
    )
    second = send(client, key, "stop", "SM2").json()["data"]
    assert (second["action"], second["reply"]) == ("none", None)
    assert ledger_events(store, org["id"]) == ["opt_out.created"]


def test_start_opts_back_in_whatever_the_source(client, store, org, key):
    store.put_opt_out(org["id"], CONTACT, reason=None, actor=OPERATOR, surface="cli")
    data = send(client, key, "START", "SM1").json()["data"]
    assert (data["category"], data["action"]) == ("opt_in", "opted_in")
    assert data["reply"]["text"].startswith("Acme Health: You are resubscribed.")
    assert store.get_opt_out(org["id"], CONTACT) is None
    again = send(client, key, "start", "SM2").json()["data"]
    assert (again["action"], again["reply"]) == ("none", None)


def test_stop_over_an_entry_added_by_hand_makes_it_the_contacts_own(
    client, store, org, key, make_key
):
    """The operator added the number by hand, then the contact texted STOP: the entry is the
    contact's now, so the operator can no longer delete it (409); only START removes it."""
    writer = make_key(org["id"], "opt_outs:write")
    added = store.put_opt_out(
        org["id"], CONTACT, reason="asked by phone", actor=OPERATOR, surface="cli"
    )[0]
    data = send(client, key, "STOP", "SM1").json()["data"]
    assert (data["category"], data["action"], data["reply"]) == ("opt_out", "none", None)
    entry = store.get_opt_out(org["id"], CONTACT)
    assert entry == {**added, "source": "keyword", "keyword": "STOP", "inbound_message_id": "SM1"}
    refused = client.delete(f"/v1/opt_outs/%2B{CONTACT[1:]}", headers=bearer(writer))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "OPTED_OUT_BY_CONTACT"
    assert store.get_opt_out(org["id"], CONTACT) == entry
    assert ledger_events(store, org["id"]) == ["opt_out.created", "opt_out.created"]
    assert send(client, key, "START", "SM2").json()["data"]["action"] == "opted_in"
    assert store.get_opt_out(org["id"], CONTACT) is None


def test_help_is_answered_opted_out_or_not(client, store, org, key):
    send(client, key, "STOP", "SM1")
    data = send(client, key, "help!", "SM2").json()["data"]
    assert (data["keyword"], data["action"]) == ("HELP", "help")
    assert data["reply"]["text"].startswith("Acme Health: Reply STOP to unsubscribe")
    assert store.get_opt_out(org["id"], CONTACT) is not None


def test_custom_texts_are_sent_as_written(client, store, org, key):
    set_auto_replies(store, org["id"], stop_text="Bye from Acme 👋")
    reply = send(client, key, "STOP", "SM1").json()["data"]["reply"]
    assert reply == {"text": "Bye from Acme 👋", "encoding": "UCS-2", "segments": 1}


def test_auto_replies_off_still_opts_out(client, store, org, key):
    """Disabling auto replies never disables opt-outs: the entry is made, the reply is null."""
    set_auto_replies(store, org["id"], enabled=False)
    data = send(client, key, "UNSUBSCRIBE", "SM1").json()["data"]
    assert (data["action"], data["reply"]) == ("opted_out", None)
    assert store.get_opt_out(org["id"], CONTACT)["keyword"] == "UNSUBSCRIBE"


@pytest.mark.parametrize(
    "body", ["Cancel my 3pm", "End of day works", "We have got to STOP this bill", "Yes please"]
)
def test_conversation_records_nothing(client, store, org, key, body):
    data = send(client, key, body, "SM1").json()["data"]
    assert (data["keyword"], data["category"], data["action"], data["reply"]) == (
        None,
        None,
        "none",
        None,
    )
    assert store.get_opt_out(org["id"], CONTACT) is None
    assert ledger_events(store, org["id"]) == []


def test_a_retried_message_gets_the_first_answer_and_changes_nothing(client, store, org, key):
    """The webhook retried: the same answer (the confirmation included), no second event, even
    after the org's name changed."""
    first = send(client, key, "STOP", "SM1").json()
    store.modify_org(
        org["id"],
        lambda o: ({**o, "name": "Renamed"}, None),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )
    again = send(client, key, "STOP", "SM1")
    assert (again.status_code, again.json()) == (200, first)
    assert ledger_events(store, org["id"]) == ["opt_out.created"]


@pytest.mark.parametrize(
    "change", [{"body": "START"}, {"from": "+14155550124"}, {"to": "+14155550101"}, {"body": "Hi"}]
)
def test_another_message_under_a_used_id_is_409(client, store, org, key, change):
    send(client, key, "STOP", "SM1")
    payload = {"id": "SM1", "from": CONTACT, "to": OUR_NUMBER, "body": "STOP", **change}
    answer = client.post(URL, json=payload, headers=bearer(key))
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert "id" in answer.json()["error"]["details"]
    assert store.get_opt_out(org["id"], CONTACT) is not None
    assert ledger_events(store, org["id"]) == ["opt_out.created"]


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("from", "+4402071234567", "canonical"),
        ("to", "+1415555", "not a possible phone number"),
        ("from", "14155550123", "E.164"),
        ("id", "has space", None),
        ("id", "SM1\n", None),
        ("body", "x" * 1601, None),
    ],
)
def test_bad_input_is_422_naming_the_field(client, store, org, key, field, value, detail):
    payload = {"id": "SM1", "from": CONTACT, "to": OUR_NUMBER, "body": "STOP", field: value}
    answer = client.post(URL, json=payload, headers=bearer(key))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert field in error["details"]
    if detail:
        assert detail in error["details"][field]
    assert store.get_opt_out(org["id"], CONTACT) is None


def test_needs_the_messaging_scope(client, org, make_key):
    answer = send(client, make_key(org["id"], "opt_outs:write"), "STOP", "SM1")
    assert answer.status_code == 403
