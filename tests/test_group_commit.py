"""storage.writer.GroupCommit: inline jobs in shared transactions, one COMMIT per batch."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import OPERATOR
from storage import Store, writer


def _rename(name: str):
    return lambda org: ({**org, "name": name}, None)


async def _request(store: Store, org_id: str, name: str) -> dict[str, Any]:
    """What the HTTP bridge does for one write: join a transaction, run, await its COMMIT."""
    group = store.group
    await group.ready()
    org, _event = store.modify_org(
        org_id, _rename(name), actor=OPERATOR, surface="v1", request_id=name
    )
    batch = group.batch
    group.schedule_commit()
    await batch
    return org


@pytest.fixture
def store(tmp_path: Path):
    """A group-commit store over a fresh database, closed after the test."""
    s = Store(tmp_path / "gc.db", group_commit=True)
    s.migrate()
    yield s
    s.close()


def test_concurrent_writes_share_commits_and_all_land(store: Store) -> None:
    """Sixteen concurrent writes: each lands with its own event, in fewer COMMITs than writes."""
    org = store.create_org(name="Start", actor=OPERATOR)
    commits = 0

    async def main() -> list[dict[str, Any]]:
        nonlocal commits
        original = store.group._commit

        def counting_commit() -> None:
            nonlocal commits
            commits += 1
            original()

        store.group._commit = counting_commit
        return await asyncio.gather(*(_request(store, org["id"], f"n{i}") for i in range(16)))

    results = asyncio.run(main())
    assert sorted(r["version"] for r in results) == list(range(2, 18))
    assert store.get_org(org["id"])["version"] == 17
    events, _ = store.list_events(org["id"], limit=100)
    assert len([e for e in events if e["type"] == "organization.updated"]) == 16
    assert commits < 16


def _counting_commits(store: Store) -> list[int]:
    commits = [0]
    original = store.group._commit

    def counting_commit() -> None:
        commits[0] += 1
        original()

    store.group._commit = counting_commit
    return commits


def test_writers_arriving_over_several_iterations_share_one_commit(store, monkeypatch) -> None:
    """The batch stays open while writers keep joining, one loop iteration after another."""
    monkeypatch.setattr(writer, "LINGER_SECONDS", 60.0)  # only "nobody joined" may close it
    org = store.create_org(name="Start", actor=OPERATOR)

    async def late(delay: int) -> dict[str, Any]:
        for _ in range(delay):
            await asyncio.sleep(0)
        return await _request(store, org["id"], f"n{delay}")

    async def main() -> list[dict[str, Any]]:
        commits = _counting_commits(store)
        results = await asyncio.gather(*(late(i) for i in range(8)))
        assert commits[0] == 1
        return results

    results = asyncio.run(main())
    assert sorted(r["version"] for r in results) == list(range(2, 10))


def test_a_batch_nobody_joins_commits_without_waiting_out_the_linger(store, monkeypatch) -> None:
    """A lone write is committed as soon as an iteration passes without another joining."""
    monkeypatch.setattr(writer, "LINGER_SECONDS", 60.0)
    org = store.create_org(name="Start", actor=OPERATOR)

    async def main() -> dict[str, Any]:
        return await asyncio.wait_for(_request(store, org["id"], "alone"), timeout=10)

    assert asyncio.run(main())["version"] == 2
    assert store.get_org(org["id"])["name"] == "alone"


def test_a_rejected_job_rolls_back_alone(store: Store) -> None:
    """A job that raises leaves the other jobs of its transaction committed."""
    org = store.create_org(name="Start", actor=OPERATOR)

    def reject(_org: dict[str, Any]) -> tuple[dict[str, Any], None]:
        raise ValueError("rule violated")

    async def main() -> None:
        group = store.group
        await group.ready()
        with pytest.raises(ValueError):
            store.modify_org(org["id"], reject, actor=OPERATOR, surface="v1", request_id="bad")
        store.modify_org(org["id"], _rename("Good"), actor=OPERATOR, surface="v1", request_id="ok")
        batch = group.batch
        group.schedule_commit()
        await batch

    asyncio.run(main())
    current = store.get_org(org["id"])
    assert (current["name"], current["version"]) == ("Good", 2)


def test_a_failed_commit_fails_every_request_of_the_batch(store: Store) -> None:
    """If COMMIT fails, nobody is told their write succeeded and nothing is kept."""
    org = store.create_org(name="Start", actor=OPERATOR)

    async def main() -> list[Any]:
        original = store.group._commit

        def failing_commit() -> None:
            store.group._db.conn.execute("ROLLBACK")
            store.lock.release()
            raise sqlite3.OperationalError("disk I/O error")

        store.group._commit = failing_commit
        results = await asyncio.gather(
            *(_request(store, org["id"], f"n{i}") for i in range(4)), return_exceptions=True
        )
        store.group._commit = original
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    assert store.get_org(org["id"])["version"] == 1


def test_inline_jobs_need_an_open_transaction(store: Store) -> None:
    """Writing on the loop thread without ready() is a programming error, not a silent write."""
    org = store.create_org(name="Start", actor=OPERATOR)

    async def main() -> None:
        group = store.group
        await group.ready()  # binds the loop, opens a transaction
        batch = group.batch
        group.schedule_commit()
        await batch  # now no transaction is open
        with pytest.raises(RuntimeError):
            group.run_job(lambda db: None)

    asyncio.run(main())
    assert store.get_org(org["id"])["version"] == 1
