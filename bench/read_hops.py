"""Bench only: what a read costs the event loop, hop to a reader thread and back included.

Issue 20 (levers 2 and 4): every SQLite read runs on a reader thread, and the hop there and
back cost more CPU than the read it carried. This measures, on one event loop, ``--concurrency``
tasks (16, as wrk's connections in ``make bench``) reading in a loop until ``--reads`` reads are
done, over a fresh SQLite database with one organization and one key:

- ``read on the loop``: ``organizations.read`` called directly on a connection, on the loop
  thread, one at a time (no hop): the SQLite work alone, for reference;
- ``hop only``: ``SqliteStore._read`` of a function that does nothing: the hop alone;
- ``get_org``: ``Store.get_org``, one read of the organization;
- ``key_by_hash``: ``Store.key_by_hash``, the key lookup every /v1 request makes;
- ``GET /v1/organization reads``: the reads a GET makes: ``key_by_hash``, then ``get_org``
  unless the key lookup carried the organization (``"organization"`` in its answer).

Each mode runs ``--rounds`` times, interleaved (every mode once per round), after a warm-up
round; the table shows per mode the median reads/s, wall-clock microseconds per read (one over
the rate: with ``--concurrency`` reads in flight, not a latency), CPU microseconds per read
(``time.process_time``: every thread of the process) and the event loop thread's share of it
(``time.thread_time`` on the loop: what the loop cannot spend on other requests). The
process is pinned to ``--cpu`` (0; -1: not pinned), as ``make bench`` pins the server to one
core. Informational: nothing is asserted and the exit status is 0 unless a read fails.

``--postgresql`` measures the last three modes over PostgreSQL instead (no reader threads
there: psycopg's awaits run on the loop), in a fresh database of the server
ORGSETTINGS_TEST_POSTGRES names, else of a throwaway cluster (``tools/postgres_cluster.py
run``), dropped at the end; the server's own CPU is not counted.

    .venv/bin/python bench/read_hops.py [--reads N] [--concurrency C] [--rounds R] [--cpu K]
        [--postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pg_mode  # noqa: E402

from handlers.auth.api_keys import mint_key  # noqa: E402
from storage import open_store  # noqa: E402
from storage.sqlite import organizations  # noqa: E402
from storage.sqlite.connection import connect  # noqa: E402
from storage.sqlite.store import SqliteStore  # noqa: E402

OPERATOR = {"type": "operator", "id": "bench", "role": None}
Read = Callable[[], Awaitable[Any]]
Runs = dict[str, list[tuple[float, float, float]]]


async def run_mode(read: Read, reads: int, concurrency: int) -> tuple[float, float, float]:
    """Wall, process CPU and loop-thread CPU seconds for ``reads`` calls of ``read``,
    ``concurrency`` at a time."""
    left = reads

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await read()

    wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - loop


async def bench(args: argparse.Namespace, location: Path | str) -> Runs:
    store = open_store(location)
    sqlite = isinstance(store, SqliteStore)
    await store.start()
    await store.migrate()
    org = await store.create_org(name="Bench", actor=OPERATOR)
    _secret, prefix, key_hash = mint_key()
    await store.create_key(
        org_id=org["id"], key_hash=key_hash, prefix=prefix, scopes=["org:read"], actor=OPERATOR
    )
    direct = connect(location, store.wait_seconds) if sqlite else None

    async def on_loop() -> Any:
        return organizations.read(direct, org["id"])

    async def hop() -> Any:
        assert isinstance(store, SqliteStore)
        return await store._read(lambda _db: None)

    async def get_org() -> Any:
        return await store.get_org(org["id"])

    async def key() -> Any:
        return await store.key_by_hash(key_hash)

    async def get_reads() -> Any:
        found = await store.key_by_hash(key_hash)
        if "organization" in found:
            return found["organization"]
        return await store.get_org(found["organization_id"])

    modes: dict[str, Read] = {
        **({"read on the loop": on_loop, "hop only": hop} if sqlite else {}),
        "get_org": get_org,
        "key_by_hash": key,
        "GET /v1/organization reads": get_reads,
    }
    results: Runs = {name: [] for name in modes}
    try:
        for round_ in range(args.rounds + 1):
            for name, read in modes.items():
                concurrency = 1 if read is on_loop else args.concurrency
                measured = await run_mode(read, args.reads, concurrency)
                if round_:  # round 0 warms up
                    results[name].append(measured)
    finally:
        if direct is not None:
            direct.close()
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()
    if args.postgresql:
        pg_mode.reexec_under_cluster()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.postgresql:
        admin_url = os.environ[pg_mode.ENV_VAR]
        url, name = pg_mode.create_database(admin_url)
        try:
            results = asyncio.run(bench(args, url))
        finally:
            pg_mode.drop_database(admin_url, name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(bench(args, Path(tmp) / "bench.db"))
    pinned = f"CPU {args.cpu}" if args.cpu >= 0 else "not pinned"
    print(
        f"{'PostgreSQL' if args.postgresql else 'SQLite'}: {args.reads} reads x {args.rounds}"
        f" rounds, {args.concurrency} concurrent (the loop read: 1), {pinned}; medians"
    )
    print(f"{'mode':<28} {'reads/s':>9} {'us/read':>8} {'CPU us/read':>12} {'loop CPU us':>12}")
    for name, runs in results.items():
        wall, cpu, loop = (median(run[i] for run in runs) / args.reads * 1e6 for i in range(3))
        print(f"{name:<28} {1e6 / wall:>9,.0f} {wall:>8.1f} {cpu:>12.1f} {loop:>12.1f}")


if __name__ == "__main__":
    main()
