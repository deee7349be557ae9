"""POST /v1/missed_calls: the rules in order, the text, contact protection, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import OPERATOR, bearer, query
from storage import StorageUnavailable

URL = "/v1/missed_calls"
CALLER = "+12125550123"  # New York
NO_ZONE = "+441632960123"
TEMPLATE = (
    "Hi {{contactName}}, sorry we missed you. {{agentName}} at {{organizationName}} will call."
)
DAY = "2026-12-02T20:15:00Z"  # 15:15 in New York
NIGHT = "2026-12-03T04:00:00Z"  # 23:00 in New York


@pytest.fixture
def key(org: dict[str, Any], make_key) -> str:
    """The voice pipeline's key."""
    return make_key(org["id"], "messaging")


def configure(store, org_id: str, quiet: dict[str, Any] | None = None, **fields: Any) -> None:
    """The auto-message on with TEMPLATE and 48 hours of protection, unless given."""
    wanted = {
        "missed_call_message": TEMPLATE,
        "missed_call_auto_message_enabled": True,
        "contact_protection_period": 48,
        **fields,
    }
    store.modify_org(
        org_id,
        lambda o: (
            {**o, **wanted, "quiet_hours": {**o["quiet_hours"], **(quiet or {})}},
            None,
        ),
        actor=OPERATOR,
        surface="cli",
        request_id=None,
    )


@pytest.fixture
def on(store, org) -> dict[str, Any]:
    """The organization with the auto-message on."""
    configure(store, org["id"])
    return org


def report(client, key: str, call_id: str, at: str | None = DAY, **fields: Any):
    """Report one missed call from CALLER (unless ``from`` is given)."""
    body = {"id": call_id, "from": CALLER, **fields}
    if at is not None:
        body["at"] = at
    return client.post(URL, json=body, headers=bearer(key))


def data(client, key: str, call_id: str, at: str | None = DAY, **fields: Any) -> dict:
    answer = report(client, key, call_id, at, **fields)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def counted(database: str) -> list[tuple[Any, ...]]:
    return query(database, "SELECT phone_number, call_id FROM missed_call_contacts")


def test_send_renders_the_names(client, key, on):
    assert data(client, key, "CA1", contact_name=" Dana\n", agent_name="Sam") == {
        "id": "CA1",
        "action": "send",
        "reason": None,
        "text": "Hi Dana, sorry we missed you. Sam at Acme Health will call.",
        "encoding": "GSM-7",
        "segments": 1,
        "next_allowed_at": None,
    }


def test_missing_names_fall_back(client, key, on):
    text = data(client, key, "CA1", contact_name="   ", agent_name=None)["text"]
    assert text == "Hi there, sorry we missed you. our team at Acme Health will call."


def test_a_name_outside_gsm_makes_it_ucs2(client, key, on):
    answer = data(client, key, "CA1", contact_name="Zoë 🙂" + "x" * 90)
    assert answer["encoding"] == "UCS-2"
    assert "Hi Zoë 🙂" + "x" * 35 + ", sorry" in answer["text"]  # the name cut to 40
    assert answer["segments"] == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"missed_call_auto_message_enabled": False},
        {"missed_call_message": None},
        {"missed_call_message": "  \t "},  # renders to nothing
    ],
)
def test_disabled_skips_before_anything_else(client, store, org, key, fields):
    configure(store, org["id"], **fields)
    store.put_opt_out(org["id"], CALLER, reason=None, actor=OPERATOR, surface="cli")
    answer = data(client, key, "CA1")
    assert (answer["action"], answer["reason"], answer["text"]) == ("skip", "disabled", None)
    assert (answer["encoding"], answer["segments"], answer["next_allowed_at"]) == (None, None, None)


def test_opted_out_skips_before_contact_protection(client, store, key, on, config):
    data(client, key, "CA1")
    store.put_opt_out(on["id"], CALLER, reason=None, actor=OPERATOR, surface="cli")
    answer = data(client, key, "CA2")
    assert (answer["action"], answer["reason"]) == ("skip", "opted_out")


@pytest.mark.parametrize(
    ("later", "action"),
    [
        ("2026-12-04T20:14:59Z", "skip"),  # 47:59:59 after the first: still protected
        ("2026-12-04T20:15:00Z", "send"),  # exactly 48 hours after: no longer
        ("2026-12-02T10:00:00Z", "skip"),  # reported out of order, before the first
    ],
)
def test_contact_protection_period(client, key, on, later, action):
    assert data(client, key, "CA1")["action"] == "send"
    answer = data(client, key, "CA2", at=later)
    assert answer["action"] == action
    if action == "skip":
        assert (answer["reason"], answer["text"]) == ("recently_messaged", None)


def test_a_period_of_zero_is_no_limit(client, store, org, key):
    configure(store, org["id"], contact_protection_period=0)
    assert [data(client, key, f"CA{n}")["action"] for n in range(3)] == ["send"] * 3


def test_quiet_hours_queue_holds_and_the_hold_counts(client, store, org, key):
    configure(store, org["id"], quiet={"enabled": True, "mode": "queue"})
    held = data(client, key, "CA1", at=NIGHT)
    assert (held["action"], held["reason"], held["next_allowed_at"]) == (
        "hold",
        None,
        "2026-12-03T13:00:00Z",
    )
    assert held["text"].startswith("Hi there")
    answer = data(client, key, "CA2", at="2026-12-03T15:00:00Z")
    assert (answer["action"], answer["reason"]) == ("skip", "recently_messaged")


def test_a_held_text_counts_from_when_it_goes_out(client, store, org, key):
    """Calls through one night, more than a period apart, are one held text at 08:00, not one
    each at 08:00; the period then runs from 08:00."""
    configure(
        store, org["id"], quiet={"enabled": True, "mode": "queue"}, contact_protection_period=2
    )
    night = ["2026-12-03T03:00:00Z", "2026-12-03T05:30:00Z", "2026-12-03T08:00:00Z"]
    answers = [data(client, key, f"CA{n}", at=at) for n, at in enumerate(night)]
    assert [(a["action"], a["reason"]) for a in answers] == [
        ("hold", None),  # 22:00 in New York: texted at 08:00 (13:00Z)
        ("skip", "recently_messaged"),  # 00:30, 2.5 hours later: that text is still to go
        ("skip", "recently_messaged"),  # 03:00
    ]
    assert answers[0]["next_allowed_at"] == "2026-12-03T13:00:00Z"
    morning = data(client, key, "CA3", at="2026-12-03T14:59:59Z")  # 1:59:59 after 08:00
    assert (morning["action"], morning["reason"]) == ("skip", "recently_messaged")
    assert data(client, key, "CA4", at="2026-12-03T15:00:00Z")["action"] == "send"


def test_quiet_hours_reject_skips_and_the_skip_does_not_count(client, store, org, key, config):
    configure(store, org["id"], quiet={"enabled": True, "mode": "reject"})
    skipped = data(client, key, "CA1", at=NIGHT)
    assert (skipped["action"], skipped["reason"], skipped["text"]) == ("skip", "quiet_hours", None)
    assert skipped["next_allowed_at"] == "2026-12-03T13:00:00Z"
    assert counted(config.database) == []
    assert data(client, key, "CA2", at="2026-12-03T15:00:00Z")["action"] == "send"
    assert counted(config.database) == [(CALLER, "CA2")]


def test_a_caller_without_a_zone_is_skipped_when_quiet_hours_are_on(client, store, org, key):
    configure(store, org["id"], quiet={"enabled": True})
    answer = data(client, key, "CA1", **{"from": NO_ZONE})
    assert (answer["action"], answer["reason"]) == ("skip", "time_zone_unknown")


def test_a_retry_gets_the_first_answer_even_after_a_change(client, store, org, key, config):
    """The webhook retried after the org turned the message off: the first answer, counted
    once; ``at`` written another way is the same instant."""
    configure(store, org["id"])
    first = report(client, key, "CA1", contact_name="Dana")
    configure(store, org["id"], missed_call_auto_message_enabled=False)
    again = report(client, key, "CA1", at="2026-12-02T15:15:00-05:00", contact_name="Dana")
    assert (again.status_code, again.content) == (200, first.content)  # byte for byte
    assert counted(config.database) == [(CALLER, "CA1")]


def test_a_call_without_at_is_replayed_too(client, key, on):
    first = data(client, key, "CA1", at=None)
    assert data(client, key, "CA1", at=None) == first


@pytest.mark.parametrize(
    "change",
    [
        {"from": "+13105550123"},
        {"contact_name": "Dana"},
        {"agent_name": "Sam"},
        {"at": "2026-12-02T20:15:01Z"},
    ],
)
def test_another_call_under_a_used_id_is_409(client, key, on, config, change):
    data(client, key, "CA1")
    body = {"id": "CA1", "from": CALLER, "at": DAY, **change}
    answer = client.post(URL, json=body, headers=bearer(key))
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == (
        "IDEMPOTENCY_CONFLICT",
        "this id was already used for a different call",
    )
    assert "id" in error["details"]
    assert counted(config.database) == [(CALLER, "CA1")]


@pytest.mark.parametrize(
    ("field", "value", "detail"),
    [
        ("from", "+4402071234567", "canonical"),
        ("from", "+1415555", "not a possible phone number"),
        ("id", "has space", None),
        ("contact_name", "x" * 101, "at most 100"),
        ("agent_name", 7, "string"),
        ("at", "2026-12-02 20:15", "date-time"),
        ("at", "9999-12-31T00:00:00Z", "before 9999-12-01"),
        ("to", CALLER, "unknown"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_records_nothing(
    client, key, on, config, field, value, detail
):
    body = {"id": "CA1", "from": CALLER, field: value}
    answer = client.post(URL, json=body, headers=bearer(key))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    if detail:
        assert detail in error["details"][field], error["details"]
    assert query(config.database, "SELECT COUNT(*) FROM remembered_requests") == [(0,)]


def test_a_database_fault_is_503_records_nothing_and_a_retry_answers_once(
    client, key, on, config, app_store, monkeypatch
):
    async def locked(*_args, **_kwargs):
        raise StorageUnavailable("database is locked", retry_after=1)

    with monkeypatch.context() as patch:
        patch.setattr(app_store, "_write", locked)
        answer = report(client, key, "CA1")
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
    assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert counted(config.database) == []
    first = data(client, key, "CA1")
    assert first["action"] == "send"
    assert data(client, key, "CA1") == first
    assert counted(config.database) == [(CALLER, "CA1")]
    assert query(config.database, "SELECT COUNT(*) FROM remembered_requests") == [(1,)]


def test_needs_the_messaging_scope(client, org, make_key):
    answer = report(client, make_key(org["id"], "opt_outs:write"), "CA1")
    assert answer.status_code == 403
