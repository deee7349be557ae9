"""PATCH /v1/organization: every rule of the product contract, one behaviour per test.

Every rejected request is also checked to have changed nothing: the organization record (and so
its version and ETag) and its audit trail are re-read from the store and compared.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import OPERATOR, bearer

URL = "/v1/organization"
READ_ONLY = {
    "id": "0190a1b2-c3d4-7e5f-a7b8-c9d0e1f2a3b4",
    "plan": "enterprise",
    "throughput_tier": 5,
    "tenant_type": "personal",
    "registration_status": {"brand": "ACTIVE", "brand_count": 1, "campaign_count": 1},
    "created_at": "2026-01-04T12:00:00Z",
    "updated_at": "2026-01-04T12:00:00Z",
}
ATTESTATION = "Acme Health answers HELP and STOP messages itself."
ATTESTATION_MESSAGE = (
    "disabling auto replies requires auto_replies.attestation, an explicit statement that your "
    "organization will handle HELP and STOP responses itself"
)


def snapshot(store, org_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The org record and its whole audit trail, to compare before and after a request."""
    return store.get_org(org_id), store.list_events(org_id, limit=100)[0]


def patch(client, key: str, body: Any, **headers: str):
    """PATCH the key's organization with a JSON body."""
    return client.patch(URL, json=body, headers={**bearer(key), **headers})


def patch_raw(client, key: str, content: bytes, content_type: str = "application/json"):
    """PATCH with raw bytes, for bodies the JSON encoder would never produce."""
    headers = {**bearer(key), "Content-Type": content_type}
    return client.patch(URL, content=content, headers=headers)


def error_of(response) -> dict[str, Any]:
    """The ``error`` object of a v1 error body."""
    body = response.json()
    assert body["success"] is False
    return body["error"]


@pytest.fixture
def personal(store) -> dict[str, Any]:
    """A personal-tenant organization (never eligible for reseller status)."""
    return store.create_org(name="Jo Doe", tenant_type="personal", actor=OPERATOR)


@pytest.fixture
def reseller(client, store, org, admin_key) -> dict[str, Any]:
    """``org`` after turning reseller status on."""
    assert patch(client, admin_key, {"is_reseller": True}).status_code == 200
    return store.get_org(org["id"])


# -- block merge --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (
            {"quiet_hours": {"start": "22:00"}},
            "quiet_hours",
            {"enabled": False, "start": "22:00", "end": "08:00", "mode": "reject"},
        ),
        (
            {"quiet_hours": {"enabled": True, "mode": "queue"}},
            "quiet_hours",
            {"enabled": True, "start": "21:00", "end": "08:00", "mode": "queue"},
        ),
        (
            {"auto_replies": {"stop_text": "You are unsubscribed."}},
            "auto_replies",
            {
                "enabled": True,
                "stop_text": "You are unsubscribed.",
                "help_text": None,
                "start_text": None,
            },
        ),
    ],
)
def test_block_patch_keeps_omitted_inner_fields(
    client, store, org, admin_key, body, field, expected
):
    """A block patch changes only the inner fields it names."""
    response = patch(client, admin_key, body)
    assert response.status_code == 200
    assert response.json()["data"][field] == expected
    assert store.get_org(org["id"])[field] == expected


def test_block_patch_keeps_an_earlier_inner_change(client, store, org, admin_key):
    """A second patch to another inner field does not undo the first."""
    patch(client, admin_key, {"auto_replies": {"stop_text": "Bye."}})
    patch(client, admin_key, {"auto_replies": {"help_text": "Call us."}})
    replies = store.get_org(org["id"])["auto_replies"]
    assert (replies["stop_text"], replies["help_text"]) == ("Bye.", "Call us.")


def test_reply_text_null_returns_to_platform_default(client, store, org, admin_key):
    """A reply text set to null goes back to the platform default (null)."""
    patch(client, admin_key, {"auto_replies": {"stop_text": "Bye."}})
    response = patch(client, admin_key, {"auto_replies": {"stop_text": None}})
    assert response.status_code == 200
    assert store.get_org(org["id"])["auto_replies"]["stop_text"] is None


# -- schema errors: every one is 422 VALIDATION_FAILED and changes nothing ---------------------


@pytest.mark.parametrize("field", sorted(READ_ONLY))
def test_read_only_field_is_named_as_read_only(client, store, org, admin_key, field):
    """Each read-only field is refused with details naming it as read-only."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, {field: READ_ONLY[field]})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"] == {field: "is read-only"}
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"colour": "red"}, "colour"),
        ({"version": 7}, "version"),
        ({"contact_protection_period": 48}, "contact_protection_period"),
        ({"missed_call_message": "Hi"}, "missed_call_message"),
        ({"quiet_hours": {"timezone": "UTC"}}, "quiet_hours.timezone"),
        ({"auto_replies": {"keyword": "STOP"}}, "auto_replies.keyword"),
    ],
)
def test_unknown_field_is_refused(client, store, org, admin_key, body, path):
    """Fields the surface does not know, top-level or inside a block, are 422."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VALIDATION_FAILED"
    assert error_of(response)["details"] == {path: "unknown field"}
    assert snapshot(store, org["id"]) == before


def test_every_error_is_reported_at_once(client, store, org, admin_key):
    """Several bad fields in one body are all named in details."""
    before = snapshot(store, org["id"])
    body = {
        "name": "",
        "message_retention_days": 10,
        "plan": "pro",
        "quiet_hours": {"start": "25:00", "mode": "silent"},
        "auto_replies": {"stop_text": "x" * 321},
        "colour": "red",
    }
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    assert set(error_of(response)["details"]) == {
        "name",
        "message_retention_days",
        "plan",
        "quiet_hours.start",
        "quiet_hours.mode",
        "auto_replies.stop_text",
        "colour",
    }
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "\t\n"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 42}, "name"),
        ({"billing_email": "not-an-email"}, "billing_email"),
        ({"billing_email": "ap@"}, "billing_email"),
        ({"billing_email": ""}, "billing_email"),
        ({"message_retention_days": 29}, "message_retention_days"),
        ({"message_retention_days": 366}, "message_retention_days"),
        ({"message_retention_days": 60.5}, "message_retention_days"),
        ({"message_retention_days": "60"}, "message_retention_days"),
        ({"message_retention_days": True}, "message_retention_days"),
        ({"message_retention_days": None}, "message_retention_days"),
        ({"mms_retention_days": 0}, "mms_retention_days"),
        ({"mms_retention_days": 366}, "mms_retention_days"),
        ({"mms_retention_days": -1}, "mms_retention_days"),
        ({"is_reseller": "yes"}, "is_reseller"),
        ({"is_reseller": None}, "is_reseller"),
        ({"quiet_hours": None}, "quiet_hours"),
        ({"auto_replies": None}, "auto_replies"),
        ({"quiet_hours": "21:00-08:00"}, "quiet_hours"),
        ({"quiet_hours": {"start": "9:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"end": "24:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"enabled": None}}, "quiet_hours.enabled"),
        ({"quiet_hours": {"mode": "drop"}}, "quiet_hours.mode"),
        ({"auto_replies": {"enabled": None}}, "auto_replies.enabled"),
        ({"auto_replies": {"help_text": ""}}, "auto_replies.help_text"),
        ({"auto_replies": {"start_text": "x" * 321}}, "auto_replies.start_text"),
        ({"auto_replies": {"enabled": False, "attestation": ""}}, "auto_replies.attestation"),
        (
            {"auto_replies": {"enabled": False, "attestation": "x" * 501}},
            "auto_replies.attestation",
        ),
    ],
)
def test_invalid_value_is_refused(client, store, org, admin_key, body, path):
    """A value outside its type, range, length or format is 422 naming the field."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_FAILED"
    assert list(error["details"]) == [path]
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 100},
        {"name": "A"},
        {"message_retention_days": 30},
        {"message_retention_days": 365},
        {"mms_retention_days": 1},
        {"message_retention_days": 365, "mms_retention_days": 365},
        {"quiet_hours": {"start": "00:00", "end": "23:59"}},
        {"auto_replies": {"stop_text": "x" * 320}},
        {"billing_email": "ap@acme.example"},
    ],
)
def test_boundary_value_is_accepted(client, store, org, admin_key, body):
    """Values at the edges of their ranges are accepted and stored."""
    response = patch(client, admin_key, body)
    assert response.status_code == 200
    stored = store.get_org(org["id"])
    for field, value in body.items():
        if isinstance(value, dict):
            assert {k: stored[field][k] for k in value} == value
        else:
            assert stored[field] == value


def test_billing_email_null_clears_it(client, store, org, admin_key):
    """billing_email: null removes a billing email that was set."""
    patch(client, admin_key, {"billing_email": "ap@acme.example"})
    response = patch(client, admin_key, {"billing_email": None})
    assert response.status_code == 200
    assert response.json()["data"]["billing_email"] is None
    assert store.get_org(org["id"])["billing_email"] is None


def test_omitted_field_is_unchanged(client, store, org, admin_key):
    """Fields a patch does not name keep their value."""
    patch(client, admin_key, {"billing_email": "ap@acme.example"})
    patch(client, admin_key, {"name": "Acme Health, Inc."})
    assert store.get_org(org["id"])["billing_email"] == "ap@acme.example"


# -- cross-field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrange", "body"),
    [
        ({}, {"mms_retention_days": 91}),
        ({}, {"message_retention_days": 40, "mms_retention_days": 41}),
        ({"mms_retention_days": 60}, {"message_retention_days": 45}),
    ],
    ids=["only-mms-sent", "both-sent", "only-message-sent"],
)
def test_mms_retention_above_message_retention_is_refused(
    client, store, org, admin_key, arrange, body
):
    """The resulting mms_retention_days may never exceed message_retention_days."""
    if arrange:
        assert patch(client, admin_key, arrange).status_code == 200
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_FAILED"
    assert list(error["details"]) == ["mms_retention_days"]
    assert snapshot(store, org["id"]) == before


def test_mms_retention_equal_to_message_retention_is_accepted(client, store, org, admin_key):
    """mms_retention_days may equal message_retention_days."""
    response = patch(client, admin_key, {"message_retention_days": 45, "mms_retention_days": 45})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_hours": {"start": "08:00"}},
        {"quiet_hours": {"end": "21:00"}},
        {"quiet_hours": {"start": "10:30", "end": "10:30"}},
    ],
)
def test_quiet_hours_start_equal_to_end_is_refused(client, store, org, admin_key, body):
    """A quiet-hours window whose start equals its end is 422."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"]
    assert all(path.startswith("quiet_hours.") for path in error["details"])
    assert snapshot(store, org["id"]) == before


# -- reseller rules ---------------------------------------------------------------------------


def test_personal_org_cannot_become_reseller(client, store, personal, make_key):
    """false -> true on a personal org is RESELLER_NOT_ELIGIBLE."""
    key = make_key(personal["id"], "org:admin:write")
    before = snapshot(store, personal["id"])
    response = patch(client, key, {"is_reseller": True})
    assert response.status_code == 422
    assert error_of(response)["code"] == "RESELLER_NOT_ELIGIBLE"
    assert list(error_of(response)["details"]) == ["is_reseller"]
    assert snapshot(store, personal["id"]) == before


def test_personal_org_setting_reseller_false_is_a_no_op(client, store, personal, make_key):
    """Setting the current value (false) on a personal org is not a reseller change."""
    key = make_key(personal["id"], "org:admin:write")
    before = snapshot(store, personal["id"])
    response = patch(client, key, {"is_reseller": False})
    assert response.status_code == 200
    assert snapshot(store, personal["id"]) == before


def test_commercial_org_can_become_reseller(client, store, org, admin_key):
    """false -> true on a commercial org is allowed."""
    response = patch(client, admin_key, {"is_reseller": True})
    assert response.status_code == 200
    assert store.get_org(org["id"])["is_reseller"] is True


@pytest.mark.parametrize("status", ["ACTIVE", "PENDING", "REJECTED"])
def test_reseller_cannot_be_turned_off_while_a_brand_exists(
    client, store, reseller, admin_key, status
):
    """true -> false with any brand is RESELLER_HAS_BRANDS."""
    store.create_brand(org_id=reseller["id"], status=status, campaigns=1, actor=OPERATOR)
    before = snapshot(store, reseller["id"])
    response = patch(client, admin_key, {"is_reseller": False})
    assert response.status_code == 422
    assert error_of(response)["code"] == "RESELLER_HAS_BRANDS"
    assert list(error_of(response)["details"]) == ["is_reseller"]
    assert snapshot(store, reseller["id"]) == before


def test_reseller_with_brands_setting_true_again_is_a_no_op(client, store, reseller, admin_key):
    """Setting is_reseller to its current value while brands exist is a 200 no-op."""
    store.create_brand(org_id=reseller["id"], status="ACTIVE", campaigns=1, actor=OPERATOR)
    before = snapshot(store, reseller["id"])
    response = patch(client, admin_key, {"is_reseller": True})
    assert response.status_code == 200
    assert snapshot(store, reseller["id"]) == before


def test_reseller_can_be_turned_off_once_brands_are_gone(client, store, reseller, admin_key):
    """After the last brand is deleted, true -> false is allowed."""
    brand = store.create_brand(org_id=reseller["id"], status="ACTIVE", campaigns=1, actor=OPERATOR)
    store.delete_brand(brand["id"], OPERATOR)
    response = patch(client, admin_key, {"is_reseller": False})
    assert response.status_code == 200
    assert store.get_org(reseller["id"])["is_reseller"] is False


# -- attestation ------------------------------------------------------------------------------


def test_disabling_auto_replies_without_attestation_is_refused(client, store, org, admin_key):
    """true -> false without a statement is ATTESTATION_REQUIRED, with the published details."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, {"auto_replies": {"enabled": False}})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "ATTESTATION_REQUIRED"
    assert error["message"] == ATTESTATION_MESSAGE
    assert error["details"] == {"auto_replies.attestation": "required to disable auto replies"}
    assert snapshot(store, org["id"]) == before


def test_attestation_is_stored_on_the_audit_event(client, store, org, admin_key):
    """The statement that disabled auto replies is on the event, as GET /v1/audit_events shows."""
    body = {"auto_replies": {"enabled": False, "attestation": ATTESTATION}}
    assert patch(client, admin_key, body).status_code == 200
    events = client.get("/v1/audit_events?limit=1", headers=bearer(admin_key)).json()["data"]
    assert events[0]["attestation"] == ATTESTATION
    assert events[0]["changes"] == {"auto_replies.enabled": {"from": True, "to": False}}


def test_attestation_is_not_stored_on_the_organization(client, store, org, admin_key):
    """The organization record carries no attestation, on either view."""
    body = {"auto_replies": {"enabled": False, "attestation": ATTESTATION}}
    response = patch(client, admin_key, body)
    assert response.json()["data"]["auto_replies"] == {
        "enabled": False,
        "stop_text": None,
        "help_text": None,
        "start_text": None,
    }
    assert ATTESTATION not in json.dumps(store.get_org(org["id"]))


def test_re_enabling_auto_replies_needs_no_attestation(client, store, org, admin_key):
    """false -> true needs no statement, and its event carries none."""
    patch(client, admin_key, {"auto_replies": {"enabled": False, "attestation": ATTESTATION}})
    response = patch(client, admin_key, {"auto_replies": {"enabled": True}})
    assert response.status_code == 200
    assert store.get_org(org["id"])["auto_replies"]["enabled"] is True
    assert store.list_events(org["id"], limit=1)[0][0]["attestation"] is None


def test_attestation_sent_with_another_change_is_not_recorded(client, store, org, admin_key):
    """A statement that did not disable auto replies is ignored, not stored."""
    body = {"auto_replies": {"stop_text": "Bye.", "attestation": ATTESTATION}}
    assert patch(client, admin_key, body).status_code == 200
    assert store.list_events(org["id"], limit=1)[0][0]["attestation"] is None


# -- order of checks, all or nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "body"),
    [
        ("commercial", {"auto_replies": {"enabled": False}, "message_retention_days": 10}),
        ("commercial", {"auto_replies": {"enabled": False}, "plan": "pro"}),
        ("commercial", {"auto_replies": {"enabled": False}, "mms_retention_days": 91}),
        ("personal", {"is_reseller": True, "name": None}),
        ("personal", {"is_reseller": True, "quiet_hours": {"start": "08:00"}}),
    ],
)
def test_schema_errors_come_before_rule_errors(client, store, make_key, tenant, body):
    """A body breaking both a schema rule and a business rule is VALIDATION_FAILED."""
    target = store.create_org(name="Both", tenant_type=tenant, actor=OPERATOR)
    key = make_key(target["id"], "org:admin:write")
    before = snapshot(store, target["id"])
    response = patch(client, key, body)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VALIDATION_FAILED"
    assert snapshot(store, target["id"]) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed", "message_retention_days": 10},
        {"name": "Renamed", "mms_retention_days": 91},
        {"name": "Renamed", "auto_replies": {"enabled": False}},
        {"name": "Renamed", "quiet_hours": {"enabled": True, "start": "08:00"}},
        {"quiet_hours": {"enabled": True}, "auto_replies": {"stop_text": ""}},
    ],
)
def test_rejected_patch_applies_none_of_its_valid_changes(client, store, org, admin_key, body):
    """All or nothing: the valid fields of a rejected body are not applied either."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 422
    assert snapshot(store, org["id"]) == before


# -- If-Match ---------------------------------------------------------------------------------


@pytest.mark.parametrize("if_match", ['"1"', "*", '"7", "1"', ' "1" '])
def test_if_match_with_current_etag_applies_the_change(client, store, org, admin_key, if_match):
    """A matching If-Match (or *) lets the change through."""
    response = patch(client, admin_key, {"name": "Renamed"}, **{"If-Match": if_match})
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert store.get_org(org["id"])["name"] == "Renamed"


@pytest.mark.parametrize("if_match", ['"0"', '"2"', '"999"', 'W/"1"', "1"])
def test_if_match_with_stale_etag_changes_nothing(client, store, org, admin_key, if_match):
    """An If-Match that is not the current ETag is 412 PRECONDITION_FAILED."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, {"name": "Renamed"}, **{"If-Match": if_match})
    assert response.status_code == 412
    assert error_of(response)["code"] == "PRECONDITION_FAILED"
    assert snapshot(store, org["id"]) == before


def test_etag_from_get_guards_a_lost_update(client, store, org, admin_key):
    """Two clients patching from the same read: the second is refused."""
    etag = client.get(URL, headers=bearer(admin_key)).headers["ETag"]
    assert patch(client, admin_key, {"name": "First"}, **{"If-Match": etag}).status_code == 200
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, {"name": "Second"}, **{"If-Match": etag})
    assert response.status_code == 412
    assert snapshot(store, org["id"]) == before


# -- no-ops and effective changes -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Acme Health"},
        {"billing_email": None},
        {"message_retention_days": 90, "mms_retention_days": 30},
        {"is_reseller": False},
        {"quiet_hours": {}},
        {"quiet_hours": {"start": "21:00", "mode": "reject"}},
        {"auto_replies": {"enabled": True, "stop_text": None}},
    ],
)
def test_patch_that_changes_nothing_is_a_no_op(client, store, org, admin_key, body):
    """An empty body or the current values: 200, same version and ETag, no audit event."""
    before = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    ("body", "changes"),
    [
        (
            {"name": "Acme Health, Inc."},
            {"name": {"from": "Acme Health", "to": "Acme Health, Inc."}},
        ),
        (
            {"billing_email": "ap@acme.example"},
            {"billing_email": {"from": None, "to": "ap@acme.example"}},
        ),
        (
            {"message_retention_days": 60, "mms_retention_days": 14},
            {
                "message_retention_days": {"from": 90, "to": 60},
                "mms_retention_days": {"from": 30, "to": 14},
            },
        ),
        ({"is_reseller": True}, {"is_reseller": {"from": False, "to": True}}),
        (
            {"quiet_hours": {"start": "22:00"}},
            {"quiet_hours.start": {"from": "21:00", "to": "22:00"}},
        ),
        (
            {"quiet_hours": {"enabled": True, "start": "21:00", "mode": "queue"}},
            {
                "quiet_hours.enabled": {"from": False, "to": True},
                "quiet_hours.mode": {"from": "reject", "to": "queue"},
            },
        ),
        (
            {"auto_replies": {"help_text": "Call 555-0100."}},
            {"auto_replies.help_text": {"from": None, "to": "Call 555-0100."}},
        ),
        (
            {"name": "Acme Health", "message_retention_days": 120},
            {"message_retention_days": {"from": 90, "to": 120}},
        ),
    ],
)
def test_effective_change_bumps_version_and_records_one_event(
    client, store, org, admin_key, body, changes
):
    """One change: version +1, new ETag, exactly one organization.updated event describing it."""
    before_org, before_events = snapshot(store, org["id"])
    response = patch(client, admin_key, body)
    assert response.status_code == 200
    after_org, after_events = snapshot(store, org["id"])
    assert after_org["version"] == before_org["version"] + 1
    assert response.headers["ETag"] == f'"{after_org["version"]}"'
    assert after_events[1:] == before_events
    event = after_events[0]
    assert event["type"] == "organization.updated"
    assert event["changes"] == changes
    assert event["surface"] == "v1"
    assert event["request_id"] == response.headers["X-Request-Id"]
    assert event["attestation"] is None


def test_event_actor_is_the_api_key(client, store, org, admin_key):
    """The event names the key that made the change, with no role."""
    from handlers.auth.api_keys import hash_key

    patch(client, admin_key, {"name": "Renamed"})
    key_id = store.key_by_hash(hash_key(admin_key))["id"]
    event = store.list_events(org["id"], limit=1)[0][0]
    assert event["actor"] == {"type": "api_key", "id": key_id, "role": None}


def test_response_is_the_committed_record(client, store, org, admin_key):
    """The 200 body is the organization as stored after the change, with a fresh updated_at."""
    response = patch(client, admin_key, {"name": "Renamed"})
    stored = store.get_org(org["id"])
    data = response.json()["data"]
    assert data["name"] == stored["name"] == "Renamed"
    assert data["updated_at"] == stored["updated_at"]
    assert data["updated_at"] >= org["updated_at"]


def test_each_change_bumps_the_version_by_exactly_one(client, store, org, admin_key):
    """Successive effective changes count up the version one at a time."""
    etags = [
        patch(client, admin_key, {"message_retention_days": days}).headers["ETag"]
        for days in (31, 32, 33)
    ]
    assert etags == ['"2"', '"3"', '"4"']
    assert store.get_org(org["id"])["version"] == 4


# -- content types and JSON -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/merge-patch+json", "application/json; charset=utf-8"],
)
def test_json_content_types_are_accepted(client, store, org, admin_key, content_type):
    """application/json and application/merge-patch+json both apply the patch."""
    response = patch_raw(client, admin_key, b'{"name": "Renamed"}', content_type)
    assert response.status_code == 200
    assert store.get_org(org["id"])["name"] == "Renamed"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_other_content_type_is_415(client, store, org, admin_key, content_type):
    """A body that is not JSON by its content type is 415 UNSUPPORTED_MEDIA_TYPE."""
    before = snapshot(store, org["id"])
    response = patch_raw(client, admin_key, b'{"name": "Renamed"}', content_type)
    assert response.status_code == 415
    assert error_of(response)["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   ",
        b"{",
        b'{"name": "Renamed",}',
        b"{'name': 'Renamed'}",
        b'{"message_retention_days": NaN}',
        b'{"message_retention_days": Infinity}',
        b'{"message_retention_days": 1e999}',
        b'{"name": "A", "name": "B"}',
        b'{"quiet_hours": {"start": "22:00", "start": "23:00"}}',
        b'{"name": "\xff"}',
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"quiet_hours": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}",
    ],
)
def test_unparseable_body_is_invalid_json(client, store, org, admin_key, content):
    """Empty, malformed, NaN/Infinity, overflowing, duplicate-key, non-UTF-8 or absurdly nested
    bodies are 400, never a 500."""
    before = snapshot(store, org["id"])
    response = patch_raw(client, admin_key, content)
    assert response.status_code == 400
    assert error_of(response)["code"] == "INVALID_JSON"
    assert snapshot(store, org["id"]) == before


@pytest.mark.parametrize("content", [b"[]", b'"name"', b"42", b"null", b"true"])
def test_body_that_is_not_an_object_is_refused(client, store, org, admin_key, content):
    """Valid JSON that is not an object is 422 VALIDATION_FAILED."""
    before = snapshot(store, org["id"])
    response = patch_raw(client, admin_key, content)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VALIDATION_FAILED"
    assert snapshot(store, org["id"]) == before


def test_if_match_sent_twice_is_read_as_one_list(client, store, org, admin_key):
    """Repeated If-Match headers combine into one list (RFC 9110 5.3): one current tag suffices."""
    headers = [*bearer(admin_key).items(), ("If-Match", '"7"'), ("If-Match", '"1"')]
    response = client.patch(URL, json={"name": "Renamed"}, headers=headers)
    assert response.status_code == 200
    assert store.get_org(org["id"])["name"] == "Renamed"


def test_content_type_verdicts_hold_past_the_remembered_values(client, store, org, admin_key):
    """Past the 32 Content-Type values remembered per operation, each is still judged alone."""
    for n in range(40):
        ok = patch_raw(client, admin_key, b'{"name": "Renamed"}', f"application/json; x={n}")
        assert ok.status_code == 200, n
        refused = patch_raw(client, admin_key, b'{"name": "Other"}', f"text/plain; x={n}")
        assert refused.status_code == 415, n
    assert store.get_org(org["id"])["name"] == "Renamed"
