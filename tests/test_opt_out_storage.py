"""The opt-out ledger in the store, on both backends: entries, events, idempotency, races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import OPERATOR, POSTGRESQL, SyncStore, outside, query, sync_store
from handlers.rules import replies
from storage import IdempotencyConflict, NotFoundError, open_store
from storage.records import END_SEQ

NUMBER = "+14155550123"


def stop_decision(org: dict[str, Any], entry: dict[str, Any] | None):
    """A STOP, by the effects table: add the entry when there is none, claim one added by hand,
    leave a keyword entry; the answer says what was done."""
    source = entry["source"] if entry else None
    outcome = replies.decide("opt_out", source, org["auto_replies"], org["name"])
    change = None if outcome.ledger == "none" else outcome.ledger
    return {"keyword": "STOP", "action": outcome.action}, change


def start_decision(org: dict[str, Any], entry: dict[str, Any] | None):
    """A START: remove the entry if it is there."""
    return {"keyword": "START", "action": "opted_in" if entry else "none"}, (
        "remove" if entry else None
    )


def receive(store: SyncStore, org_id: str, message_id: str, decide=stop_decision, fp="f1"):
    return store.receive_inbound(
        org_id,
        message_id=message_id,
        phone_number=NUMBER,
        fingerprint=fp,
        decide=decide,
        actor=OPERATOR,
        request_id=None,
    )


def events(store: SyncStore, org_id: str, type_: str) -> list[dict[str, Any]]:
    page, _ = store.list_events(org_id, limit=100)
    return [e for e in page if e["type"] == type_]


def test_put_adds_once_and_records_one_event(store, org):
    """PUT twice: one entry (source api), one opt_out.created event with the source diff."""
    entry, created = store.put_opt_out(
        org["id"], NUMBER, reason="asked", actor=OPERATOR, surface="cli"
    )
    again, created_again = store.put_opt_out(
        org["id"], NUMBER, reason="other", actor=OPERATOR, surface="cli"
    )
    assert (created, created_again) == (True, False)
    assert again == entry
    assert entry["source"] == "api" and entry["reason"] == "asked" and entry["keyword"] is None
    [event] = events(store, org["id"], "opt_out.created")
    assert event["changes"] == {f"opt_outs.{NUMBER}": {"from": None, "to": "api"}}
    assert store.get_opt_out(org["id"], NUMBER) == entry
    assert store.verify_audit(org["id"])["broken"] is None


def test_put_for_an_unknown_organization_is_not_found(store):
    with pytest.raises(NotFoundError):
        store.put_opt_out("no-such-org", NUMBER, reason=None, actor=OPERATOR, surface="cli")


def test_delete_refused_by_its_check_changes_nothing(store, org):
    store.put_opt_out(org["id"], NUMBER, reason=None, actor=OPERATOR, surface="cli")

    def refuse(entry):
        raise PermissionError(entry["source"])

    with pytest.raises(PermissionError):
        store.delete_opt_out(org["id"], NUMBER, check=refuse, actor=OPERATOR, surface="cli")
    assert store.get_opt_out(org["id"], NUMBER) is not None
    assert events(store, org["id"], "opt_out.deleted") == []


def test_delete_removes_the_entry_with_an_event(store, org):
    entry, _ = store.put_opt_out(org["id"], NUMBER, reason=None, actor=OPERATOR, surface="cli")
    removed = store.delete_opt_out(
        org["id"], NUMBER, check=lambda e: None, actor=OPERATOR, surface="cli"
    )
    assert removed == entry
    assert store.get_opt_out(org["id"], NUMBER) is None
    [event] = events(store, org["id"], "opt_out.deleted")
    assert event["changes"] == {f"opt_outs.{NUMBER}": {"from": "api", "to": None}}
    with pytest.raises(NotFoundError):
        store.delete_opt_out(org["id"], NUMBER, check=lambda e: None, actor=OPERATOR, surface="cli")


def test_pages_are_newest_first_and_complete(store, org):
    numbers = [f"+1415555{n:04d}" for n in range(7)]
    for number in numbers:
        store.put_opt_out(org["id"], number, reason=None, actor=OPERATOR, surface="cli")
    seen, before = [], None
    while True:
        page, before = store.list_opt_outs(org["id"], limit=3, before_seq=before)
        seen += [e["phone_number"] for e in page]
        if before is None:
            break
    assert seen == numbers[::-1]
    assert store.opted_out(org["id"], [numbers[0], "+14155559999", numbers[6]]) == {
        numbers[0],
        numbers[6],
    }


def test_inbound_stop_is_applied_once_and_replayed(store, org):
    """The first STOP makes the entry (source keyword, its message id); the same id again
    returns the first answer and changes nothing; another payload under it is a conflict."""
    first, replayed = receive(store, org["id"], "SM1")
    assert (first["action"], replayed) == ("opted_out", False)
    entry = store.get_opt_out(org["id"], NUMBER)
    assert (entry["source"], entry["keyword"], entry["inbound_message_id"]) == (
        "keyword",
        "STOP",
        "SM1",
    )
    assert receive(store, org["id"], "SM1") == (first, True)
    assert store.replay(org["id"], "inbound", "SM1", "f1") == first
    with pytest.raises(IdempotencyConflict):
        receive(store, org["id"], "SM1", fp="other")
    with pytest.raises(IdempotencyConflict):
        store.replay(org["id"], "inbound", "SM1", "other")
    assert len(events(store, org["id"], "opt_out.created")) == 1
    # A second STOP under a new id: no second entry, no second event.
    assert receive(store, org["id"], "SM2")[0]["action"] == "none"
    assert len(events(store, org["id"], "opt_out.created")) == 1


def test_inbound_start_removes_a_keyword_entry(store, org):
    receive(store, org["id"], "SM1")
    answer, _ = receive(store, org["id"], "SM2", decide=start_decision)
    assert answer["action"] == "opted_in"
    assert store.get_opt_out(org["id"], NUMBER) is None
    [event] = events(store, org["id"], "opt_out.deleted")
    assert event["changes"] == {f"opt_outs.{NUMBER}": {"from": "keyword", "to": None}}


def test_inbound_stop_claims_an_entry_added_by_hand(store, org):
    """A STOP over an entry added by hand makes it the contact's own (so DELETE refuses it),
    keeps when and why it was added, and records one opt_out.created event from api to
    keyword; a retry of that STOP and a second STOP change nothing more."""
    added, _ = store.put_opt_out(
        org["id"], NUMBER, reason="asked by phone", actor=OPERATOR, surface="cli"
    )
    answer, replayed = receive(store, org["id"], "SM1")
    assert (answer["action"], replayed) == ("none", False)
    assert store.get_opt_out(org["id"], NUMBER) == {
        **added,
        "source": "keyword",
        "keyword": "STOP",
        "inbound_message_id": "SM1",
    }
    claim = events(store, org["id"], "opt_out.created")[0]  # newest first
    assert claim["changes"] == {f"opt_outs.{NUMBER}": {"from": "api", "to": "keyword"}}
    assert claim["created_at"] >= added["created_at"]
    assert receive(store, org["id"], "SM1") == (answer, True)
    receive(store, org["id"], "SM2")
    assert len(events(store, org["id"], "opt_out.created")) == 2  # the PUT's and the claim
    assert store.verify_audit(org["id"])["broken"] is None


@pytest.mark.parametrize("added_by_hand", [False, True], ids=["not opted out", "added by hand"])
def test_concurrent_stops_make_one_entry_one_event_one_confirmation(config, org, added_by_hand):
    """Twenty STOPs for one number at once through two stores (as two instances would), half
    of them retries of one webhook: exactly one entry, one event, one confirmation (over an
    entry added by hand: one claim, no confirmation)."""
    if added_by_hand:
        setup = sync_store(config.database)
        try:
            setup.put_opt_out(org["id"], NUMBER, reason=None, actor=OPERATOR, surface="cli")
        finally:
            setup.close()
    stores = [open_store(config.database), open_store(config.database)]

    async def race() -> list[tuple[dict[str, Any], bool]]:
        for s in stores:
            await s.start()
        try:
            calls = [
                stores[i % 2].receive_inbound(
                    org["id"],
                    message_id="SM-retried" if i % 2 else f"SM-{i}",
                    phone_number=NUMBER,
                    fingerprint="f1",
                    decide=stop_decision,
                    actor=OPERATOR,
                    request_id=None,
                )
                for i in range(20)
            ]
            return await asyncio.gather(*calls)
        finally:
            for s in stores:
                await s.close()

    answers = asyncio.run(race())
    retried = [answers[i] for i in range(1, 20, 2)]
    assert [replayed for _, replayed in retried].count(False) == 1
    assert all(a == retried[0][0] for a, _ in retried)  # every retry gets the first answer
    first_actions = [a["action"] for a, replayed in answers if not replayed]
    assert first_actions.count("opted_out") == (0 if added_by_hand else 1)
    rows = query(config.database, "SELECT source, keyword FROM opt_outs")
    assert rows == [("keyword", "STOP")]
    events_rows = query(
        config.database, "SELECT COUNT(*) FROM audit_events WHERE type = 'opt_out.created'"
    )
    assert events_rows == [(2 if added_by_hand else 1,)]
    checker = sync_store(config.database)
    try:
        assert checker.verify_audit(org["id"])["broken"] is None
    finally:
        checker.close()


def _bulk_entries(database: str, org_id: str, count: int, area: int) -> None:
    """``count`` ledger entries for an organization by plain SQL (``+1<area>2000001`` up), newer
    than every entry before them."""
    query(
        database,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO opt_outs (organization_id, phone_number, source, created_at)"
        " SELECT ?, '+1' || ? || (2000000 + i), 'api', '2026-01-01T00:00:00.000Z' FROM n",
        [count, org_id, area],
    )


def _pg_plan(database: str, statement: str, params: list[Any]) -> dict[str, Any]:
    """PostgreSQL's executed plan of one statement (EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON))."""
    [(plan,)] = query(database, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params)
    return plan[0]["Plan"]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


def test_a_page_reads_its_own_organizations_rows_only(database, store, org):
    """An organization holding most of the ledger, whose entries are older than another's: its
    newest-first page and a lookup are each one range of its own index entries (PostgreSQL,
    with fresh statistics: no backward walk of every newer row filtered by organization;
    SQLite: the plans name the two indexes)."""
    other = store.create_org(name="Newer Ledger", actor=OPERATOR)
    _bulk_entries(database, org["id"], 30_000, 415)
    _bulk_entries(database, other["id"], 10_000, 650)
    number = "+14152000007"
    page, _ = store.list_opt_outs(org["id"], limit=20)
    assert len(page) == 20 and page[0]["phone_number"] == "+14152030000"
    assert store.get_opt_out(org["id"], number)["phone_number"] == number
    if POSTGRESQL:
        from storage.postgresql import opt_outs as sql

        query(database, "ANALYZE opt_outs")
        for statement, params in (
            (sql.page_statement(21), [org["id"], END_SEQ]),
            (sql._GET, [org["id"], number]),
        ):
            scans = [n for n in _nodes(_pg_plan(database, statement, params)) if "Index Cond" in n]
            assert len(scans) == 1, scans
            assert "organization_id" in scans[0]["Index Cond"]
            assert scans[0].get("Rows Removed by Filter", 0) == 0
            assert scans[0]["Shared Hit Blocks"] + scans[0]["Shared Read Blocks"] < 20
        # Prepared as psycopg prepares it (after five runs), the page keeps one generic plan
        # instead of being planned again on every call (its LIMIT is in the statement's text).
        with outside(database) as conn:
            if conn.info.server_version >= 140000:  # pg_prepared_statements.generic_plans
                for _ in range(8):
                    conn.execute(sql.page_statement(21), [org["id"], END_SEQ], prepare=True)
                [(generic,)] = conn.execute(
                    "SELECT generic_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT * FROM opt_outs%'"
                ).fetchall()
                assert generic > 0
    else:
        from storage.sqlite import opt_outs as sql

        plans = {
            name: " / ".join(row[3] for row in query(database, "EXPLAIN QUERY PLAN " + sqls, p))
            for name, sqls, p in (
                ("page", sql._PAGE, [org["id"], END_SEQ, 21]),
                ("lookup", sql._GET, [org["id"], number]),
            )
        }
        assert (
            plans["page"]
            == "SEARCH opt_outs USING INDEX opt_outs_newest (organization_id=? AND seq<?)"
        )
        assert plans["lookup"].endswith("(organization_id=? AND phone_number=?)")
