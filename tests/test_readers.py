"""storage.sqlite.readers: the SQLite store's reader threads (results, errors, cancellation,
closing with reads pending, many reads at once, from more than one loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import OPERATOR
from storage import StorageUnavailable, open_store
from storage.sqlite.readers import ReaderPool

#: About the SQLite store's own threads; see conftest.
pytestmark = pytest.mark.sqlite_only

#: A bound on every wait in these tests; none is expected to come near it.
BOUND = 30.0


@pytest.fixture
def pools() -> Iterator[list[ReaderPool]]:
    """Pools made by a test; closed after it (a test that left a read blocked released it)."""
    made: list[ReaderPool] = []
    yield made
    for pool in made:
        assert pool.close(timeout=BOUND)


def new_pool(pools: list[ReaderPool], size: int) -> ReaderPool:
    pool = ReaderPool(size, name="test-reader")
    pools.append(pool)
    return pool


class Gate:
    """A read that holds its thread until released; tells when it has started."""

    def __init__(self, result: Any = "gated") -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.result = result

    def __call__(self) -> Any:
        self.started.set()
        assert self.release.wait(BOUND)
        return self.result

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, BOUND)


def test_a_read_answers_with_its_result_from_a_reader_thread(pools) -> None:
    pool = new_pool(pools, 2)

    async def main() -> tuple[str, str]:
        return await pool.run(lambda: ("answer", threading.current_thread().name))

    answer, thread = asyncio.run(main())
    assert answer == "answer"
    assert thread.startswith("test-reader_")
    assert thread != threading.current_thread().name


def test_an_exception_propagates_to_the_caller_as_raised(pools) -> None:
    pool = new_pool(pools, 2)
    error = ValueError("from the read")

    def fail() -> None:
        raise error

    async def main() -> None:
        with pytest.raises(ValueError) as raised:
            await pool.run(fail)
        assert raised.value is error
        assert await pool.run(lambda: "still answering") == "still answering"

    asyncio.run(main())


def test_a_cancelled_read_not_yet_started_is_skipped(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()
    ran: list[str] = []

    async def main() -> None:
        held = asyncio.ensure_future(pool.run(gate))
        await gate.wait_started()
        queued = asyncio.ensure_future(pool.run(lambda: ran.append("queued")))
        await asyncio.sleep(0)  # the read is queued behind the gate
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.release.set()
        assert await asyncio.wait_for(held, BOUND) == "gated"
        assert await asyncio.wait_for(pool.run(lambda: "next"), BOUND) == "next"

    asyncio.run(main())
    assert ran == []


def test_a_read_cancelled_while_running_leaves_the_pool_working(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()

    async def main() -> None:
        running = asyncio.ensure_future(pool.run(gate))
        await gate.wait_started()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        gate.release.set()  # its answer arrives for nobody and is dropped
        assert await asyncio.wait_for(pool.run(lambda: "next"), BOUND) == "next"

    asyncio.run(main())


def test_a_read_timed_out_by_wait_for_leaves_the_pool_working(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.run(gate), 0.05)
        gate.release.set()
        assert await asyncio.wait_for(pool.run(lambda: "next"), BOUND) == "next"

    asyncio.run(main())


def test_an_answer_for_a_loop_already_closed_is_dropped(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(TimeoutError):
            loop.run_until_complete(asyncio.wait_for(pool.run(gate), 0.05))
    finally:
        loop.close()
    gate.release.set()  # the reader answers a closed loop: nothing to do, nothing raised

    async def main() -> str:
        return await asyncio.wait_for(pool.run(lambda: "next"), BOUND)

    assert asyncio.run(main()) == "next"


def test_close_fails_the_queued_reads_lets_the_running_one_finish_and_joins(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()
    ran: list[int] = []

    async def main() -> None:
        running = asyncio.ensure_future(pool.run(gate))
        await gate.wait_started()
        queued = [asyncio.ensure_future(pool.run(lambda i=i: ran.append(i))) for i in range(3)]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(asyncio.to_thread(pool.close, BOUND))
        for read in queued:
            with pytest.raises(StorageUnavailable, match="the store is closed"):
                await asyncio.wait_for(read, BOUND)
        assert not closing.done()  # waiting for the running read
        gate.release.set()
        assert await asyncio.wait_for(running, BOUND) == "gated"
        assert await asyncio.wait_for(closing, BOUND) is True
        with pytest.raises(StorageUnavailable, match="the store is closed"):
            await pool.run(lambda: ran.append(99))

    asyncio.run(main())
    assert ran == []
    assert not [t for t in threading.enumerate() if t.name.startswith("test-reader_")]


def test_close_waits_within_its_bound_and_can_be_asked_again(pools) -> None:
    pool = new_pool(pools, 1)
    gate = Gate()

    async def main() -> None:
        running = asyncio.ensure_future(pool.run(gate))
        await gate.wait_started()
        assert await asyncio.to_thread(pool.close, 0.05) is False  # the read still runs
        gate.release.set()
        assert await asyncio.wait_for(running, BOUND) == "gated"
        assert await asyncio.to_thread(pool.close, BOUND) is True

    asyncio.run(main())


def test_a_pool_never_used_closes_at_once_and_refuses_reads(pools) -> None:
    pool = new_pool(pools, 4)
    assert pool.close(timeout=BOUND) is True

    async def main() -> None:
        with pytest.raises(StorageUnavailable):
            await pool.run(lambda: None)

    asyncio.run(main())


def test_many_concurrent_reads_each_get_their_own_answer(pools) -> None:
    pool = new_pool(pools, 4)
    threads: set[str] = set()

    def read(i: int) -> int:
        threads.add(threading.current_thread().name)
        return i * i

    async def main() -> list[int]:
        reads = [pool.run(lambda i=i: read(i)) for i in range(2000)]
        return await asyncio.wait_for(asyncio.gather(*reads), BOUND)

    assert asyncio.run(main()) == [i * i for i in range(2000)]
    assert threads <= {f"test-reader_{i}" for i in range(4)}


def test_reads_from_several_loops_at_once_each_answer_their_own_loop(pools) -> None:
    pool = new_pool(pools, 4)
    answers: dict[int, list[tuple[int, int]]] = {}

    def client(n: int) -> None:
        async def main() -> list[tuple[int, int]]:
            reads = [pool.run(lambda i=i: (n, i)) for i in range(300)]
            return await asyncio.wait_for(asyncio.gather(*reads), BOUND)

        answers[n] = asyncio.run(main())

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(BOUND)
    assert answers == {n: [(n, i) for i in range(300)] for n in range(4)}


def test_the_sqlite_store_refuses_reads_once_closed(tmp_path: Path) -> None:
    async def main() -> None:
        store = open_store(tmp_path / "closed.db")
        await store.start()
        await store.migrate()
        org = await store.create_org(name="Closed", actor=OPERATOR)
        assert (await store.get_org(org["id"]))["name"] == "Closed"
        await store.close()
        with pytest.raises(StorageUnavailable, match="the store is closed"):
            await store.get_org(org["id"])

    asyncio.run(main())
