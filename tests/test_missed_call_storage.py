"""Missed calls in the store, on both backends: contact protection, idempotency, races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import OPERATOR, SyncStore, query
from storage import IdempotencyConflict, NotFoundError, open_store

NUMBER = "+14155550123"
AT = datetime(2026, 12, 2, 20, 15, 30, 250000, tzinfo=UTC)


def once_per_number(org: dict[str, Any], opted_out: bool, last: datetime | None, at=AT):
    """Send unless opted out or a call was already counted; what it saw is in the answer."""
    seen = {"opted_out": opted_out, "last": last.isoformat() if last else None}
    if opted_out or last is not None:
        return {"action": "skip", **seen}, None
    return {"action": "send", **seen}, at


def call(store: SyncStore, org_id: str, call_id: str, decide=once_per_number, fp="f1"):
    return store.receive_missed_call(
        org_id, call_id=call_id, phone_number=NUMBER, fingerprint=fp, decide=decide
    )


def counted(database: str) -> list[tuple[Any, ...]]:
    return query(database, "SELECT phone_number, last_sent_at, call_id FROM missed_call_contacts")


def test_a_sent_call_is_counted_and_the_next_one_sees_it(store, org, config):
    """The instant a send returns is kept exactly (microseconds included) and given back as
    the same instant to the next call's decision."""
    first, replayed = call(store, org["id"], "CA1")
    assert (first["action"], first["last"], replayed) == ("send", None, False)
    assert counted(config.database) == [(NUMBER, "2026-12-02T20:15:30.250000Z", "CA1")]
    second, _ = call(store, org["id"], "CA2")
    assert (second["action"], second["last"]) == ("skip", AT.isoformat())
    assert counted(config.database) == [(NUMBER, "2026-12-02T20:15:30.250000Z", "CA1")]


def test_a_retry_gets_the_first_answer_and_a_conflict_changes_nothing(store, org, config):
    first, _ = call(store, org["id"], "CA1")
    assert call(store, org["id"], "CA1") == (first, True)
    assert store.replay(org["id"], "missed_call", "CA1", "f1") == first
    with pytest.raises(IdempotencyConflict):
        call(store, org["id"], "CA1", fp="other")
    assert counted(config.database) == [(NUMBER, "2026-12-02T20:15:30.250000Z", "CA1")]
    # The same id is a separate namespace from inbound messages.
    assert store.replay(org["id"], "inbound", "CA1", "f1") is None


def test_the_ledger_is_seen_and_a_skip_counts_nothing(store, org, config):
    store.put_opt_out(org["id"], NUMBER, reason=None, actor=OPERATOR, surface="cli")
    answer, _ = call(store, org["id"], "CA1")
    assert (answer["action"], answer["opted_out"]) == ("skip", True)
    assert counted(config.database) == []
    assert store.replay(org["id"], "missed_call", "CA1", "f1") == answer


def test_the_later_counted_call_is_kept(store, org, config):
    """Calls reported out of order: an earlier instant never replaces a later one."""

    def always(at: datetime):
        return lambda org, opted_out, last: ({"action": "send"}, at)

    call(store, org["id"], "CA1", decide=always(AT))
    call(store, org["id"], "CA2", decide=always(AT - timedelta(hours=1)))
    assert counted(config.database) == [(NUMBER, "2026-12-02T20:15:30.250000Z", "CA1")]
    call(store, org["id"], "CA3", decide=always(AT + timedelta(seconds=1)))
    assert counted(config.database) == [(NUMBER, "2026-12-02T20:15:31.250000Z", "CA3")]


def test_an_unknown_organization_is_not_found(store):
    with pytest.raises(NotFoundError):
        call(store, "no-such-org", "CA1")
    with pytest.raises(NotFoundError):
        call(store, "bad\x00id", "CA1")


def test_a_decision_that_raises_records_nothing(store, org, config):
    def broken(org, opted_out, last):
        raise RuntimeError("rule bug")

    with pytest.raises(RuntimeError):
        call(store, org["id"], "CA1", decide=broken)
    assert counted(config.database) == []
    assert store.replay(org["id"], "missed_call", "CA1", "f1") is None


def test_racing_calls_from_one_number_text_it_once(config, org):
    """Twenty calls from one number at once through two stores (as two instances would), half
    of them retries of one webhook: one send in all, every retry gets the first answer."""
    stores = [open_store(config.database), open_store(config.database)]

    async def race() -> list[tuple[dict[str, Any], bool]]:
        for s in stores:
            await s.start()
        try:
            calls = [
                stores[i % 2].receive_missed_call(
                    org["id"],
                    call_id="CA-retried" if i % 2 else f"CA-{i}",
                    phone_number=NUMBER,
                    fingerprint="f1",
                    decide=once_per_number,
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
    assert all(a == retried[0][0] for a, _ in retried)
    fresh = [a["action"] for a, replayed in answers if not replayed]
    assert fresh.count("send") == 1 and len(fresh) == 11
    assert len(counted(config.database)) == 1
    rows = query(config.database, "SELECT COUNT(*) FROM remembered_requests")
    assert rows == [(11,)]
