"""Bench only: does the opt-out ledger cost the same with 1,000,000 entries as with one?

Issue 18 ("Speed and scale"): a lookup of one number and a page at depth must cost the same,
within 10 %, for an organization with 1,000,000 ledger entries as for one with a single entry.

The databases are made by orgsettings itself (``orgsettings init``, ``org create``: schema,
organizations, their audit events). The ledger entries are then bulk-inserted by direct SQL in
one transaction (the API would take hours): rows shaped as an inbound STOP writes them (source
``keyword``, keyword ``STOP``, a message id, ``created_at`` one millisecond apart), numbers
``+1 415 2XX XXXX`` and ``+1 415 3XX XXXX`` ending in an even digit (1,000,000 of them:
possible, valid and canonical E.164) in a shuffled order, so ``seq`` order is not number
order. No audit event and no remembered answer is written
for them: bench only, never a test fixture. No ANALYZE on SQLite (orgsettings runs none); on
PostgreSQL ``VACUUM (ANALYZE) opt_outs`` after the load, as autovacuum would soon do.

Subjects (an organization each):

- ``1,000,000``: 1,000,000 entries, in the "big" database;
- ``1``: 1 entry, in a second, fresh database (22 entries in all): the baseline;
- ``21``: 21 entries (a full page and one more), in that fresh database: a page of 20 rows at
  no scale, since a one-entry organization's pages hold one row;
- ``1 beside``: 1 entry, in the big database (the same table and index depth as the big one).

Measured through the Store API (``open_store``, ``start``, then ``get_opt_out`` /
``list_opt_outs``, as the handlers call them), one call at a time, each timed on its own
(``perf_counter_ns``): a lookup that finds its number (a random entry of the subject), one that
does not (a random number of the same range ending in an odd digit), the first page (limit 20)
and a page at depth (limit 20 before a cursor: for the big organization the seq of its entry
895,000-905,000 newest, random per call, so the page is one ~900,000 entries deep; for ``21``
its newest entry, the page then being its 20 others; for a one-entry organization a cursor just
above its entry, which is all there is). Calls are interleaved in batches (every measurement,
every subject, rotating) over many rounds after a warm-up round, so drift in the machine's
speed hits all alike. The table shows the median microseconds per call and the big
organization's ratios to the one-entry baseline and, for pages, to the 21-entry organization
(the same 20 rows); the aim is a ratio <= 1.10. Informational: the exit status is 0 whatever
the ratios (a wrong answer from the store fails the run).

Standalone::

    .venv/bin/python bench/ledger_scale.py [--entries N] [--rounds R] [--batch B] [--postgresql]

``--postgresql`` runs the same over PostgreSQL (under ``tools/postgres_cluster.py run`` unless
ORGSETTINGS_TEST_POSTGRES names a server; two fresh databases, dropped at the end). Results go to
bench/ledger-scale.json (bench/ledger-scale-postgresql.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import pg_mode

from storage import open_store

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent

ENTRIES = 1_000_000
PAGE = 20
DEPTH = 900_000
DEPTH_SPREAD = 5_000
AIM = 1.10
MEASUREMENTS = ("lookup (hit)", "lookup (miss)", "first page", "page at depth")
BASELINE = "1"
PAGE_SUBJECT = "21"
BESIDE = "1 beside"
COLUMNS = (
    "organization_id",
    "phone_number",
    "source",
    "keyword",
    "inbound_message_id",
    "reason",
    "created_at",
)


def numbers(count: int, seed: int, *, odd: bool = False) -> list[str]:
    """``count`` canonical E.164 numbers (at most 1,000,000), shuffled: the even-numbered of
    +1 415 200 0000 .. +1 415 399 9999 (``odd``: the others, which no ledger holds, so a
    missed lookup lands between stored numbers, not past the index's last one)."""
    if count > 1_000_000:
        raise ValueError("at most 1,000,000 numbers")
    out = []
    for i in range(count):
        n = 2 * i + (1 if odd else 0)
        out.append(f"+1415{200 + n // 10_000:03d}{n % 10_000:04d}")
    random.Random(seed).shuffle(out)
    return out


def rows(org_id: str, phone_numbers: list[str]) -> list[tuple[Any, ...]]:
    """Ledger rows as an inbound STOP writes them, ``created_at`` one millisecond apart."""
    start = datetime.now(UTC) - timedelta(milliseconds=len(phone_numbers))
    out = []
    for index, number in enumerate(phone_numbers):
        at = start + timedelta(milliseconds=index)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        out.append((org_id, number, "keyword", "STOP", f"bulk-{index}", None, stamp))
    return out


@dataclass
class Subject:
    """An organization measured: its database, id, ledger numbers and cursors."""

    label: str
    location: str
    org_id: str
    entries: int
    numbers: list[str] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)


class Build:
    """orgsettings' CLI over one database (SQLite file or PostgreSQL URL), then bulk SQL."""

    def __init__(self, location: str, state_dir: Path) -> None:
        self.location = location
        self.postgres = location.startswith(("postgresql://", "postgres://"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
        self.env["ORGSETTINGS_STATE_DIR"] = str(state_dir)
        self.cli("init")

    def cli(self, *args: str) -> dict[str, Any]:
        """One orgsettings command with --json; its answer."""
        out = subprocess.run(
            [str(BIN / "orgsettings"), "--db", self.location, *args, "--json"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)

    def org(self, label: str, phone_numbers: list[str]) -> tuple[Subject, float]:
        """``org create``, then its entries by bulk SQL; the subject and the insert seconds."""
        org_id = self.cli("org", "create", "--name", f"Ledger {label}")["id"]
        began = time.monotonic()
        data = rows(org_id, phone_numbers)
        if self.postgres:
            seqs = self._insert_postgresql(data, org_id)
        else:
            seqs = self._insert_sqlite(data, org_id)
        subject = Subject(label, self.location, org_id, len(data), list(phone_numbers))
        subject.cursors = cursors(seqs)
        return subject, time.monotonic() - began

    def _insert_sqlite(self, data: list[tuple[Any, ...]], org_id: str) -> list[int]:
        marks = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO opt_outs ({', '.join(COLUMNS)}) VALUES ({marks})"
        with closing(sqlite3.connect(self.location, isolation_level=None, timeout=30)) as conn:
            # This connection only: no fsync per commit while loading a throwaway database.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, data)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            query = "SELECT seq FROM opt_outs WHERE organization_id = ? ORDER BY seq DESC"
            return [seq for (seq,) in conn.execute(query, (org_id,))]

    def _insert_postgresql(self, data: list[tuple[Any, ...]], org_id: str) -> list[int]:
        import psycopg

        with psycopg.connect(self.location) as conn:
            with conn.cursor() as cur:
                copy_sql = f"COPY opt_outs ({', '.join(COLUMNS)}) FROM STDIN"
                with cur.copy(copy_sql) as copy:
                    for row in data:
                        copy.write_row(row)
            conn.commit()
            conn.autocommit = True
            # What autovacuum does to a freshly loaded table within a minute or so (statistics,
            # hint bits, visibility map): measure the steady state, not the first touches.
            conn.execute("VACUUM (ANALYZE) opt_outs")
            query = "SELECT seq FROM opt_outs WHERE organization_id = %s ORDER BY seq DESC"
            return [seq for (seq,) in conn.execute(query, (org_id,))]


def cursors(seqs_newest_first: list[int]) -> list[int]:
    """``before_seq`` values for "page at depth": the seq of the entry ~DEPTH newest (random
    in DEPTH +- DEPTH_SPREAD) when there are that many, else the newest's (a page of the
    others) when there are more than a page, else one above the newest (the whole ledger)."""
    count = len(seqs_newest_first)
    if count >= DEPTH + DEPTH_SPREAD + PAGE:
        return seqs_newest_first[DEPTH - DEPTH_SPREAD - 1 : DEPTH + DEPTH_SPREAD]
    if count > PAGE:
        return [seqs_newest_first[0]]
    return [seqs_newest_first[0] + 1]


def plans(location: str, subject: Subject) -> dict[str, str]:
    """The query plans of the ledger's two reads (the statements in storage/*/opt_outs.py)."""
    get = "SELECT * FROM opt_outs WHERE organization_id = {p} AND phone_number = {p}"
    page = (
        "SELECT * FROM opt_outs WHERE organization_id = {p} AND seq < {p} "
        "ORDER BY seq DESC LIMIT {p}"
    )
    params = {
        "lookup": (subject.org_id, subject.numbers[0]),
        "page": (subject.org_id, subject.cursors[0], PAGE + 1),
    }
    out = {}
    if location.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            for name, sql in (("lookup", get), ("page", page)):
                text = "EXPLAIN " + sql.format(p="%s")
                out[name] = " / ".join(r[0] for r in conn.execute(text, params[name]))
        return out
    uri = f"file:{location}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        for name, sql in (("lookup", get), ("page", page)):
            text = "EXPLAIN QUERY PLAN " + sql.format(p="?")
            out[name] = " / ".join(r[3] for r in conn.execute(text, params[name]))
    return out


async def measure(
    subjects: list[Subject], misses: list[str], rounds: int, batch: int
) -> dict[str, dict[str, list[int]]]:
    """Nanoseconds per call, by measurement and subject label; round 0 is a warm-up."""
    stores = {}
    for location in {s.location for s in subjects}:
        stores[location] = open_store(location, create=False)
        await stores[location].start()
    rng = random.Random(18)
    times: dict[str, dict[str, list[int]]] = {
        m: {s.label: [] for s in subjects} for m in MEASUREMENTS
    }

    def call(measurement: str, subject: Subject) -> tuple[Callable[[], Awaitable[Any]], Any]:
        store, org = stores[subject.location], subject.org_id
        if measurement == "lookup (hit)":
            number = rng.choice(subject.numbers)
            return (lambda: store.get_opt_out(org, number)), number
        if measurement == "lookup (miss)":
            number = rng.choice(misses)
            return (lambda: store.get_opt_out(org, number)), None
        if measurement == "first page":
            return (lambda: store.list_opt_outs(org, limit=PAGE)), min(PAGE, subject.entries)
        before = rng.choice(subject.cursors)
        wanted = min(PAGE, subject.entries if subject.entries <= PAGE else subject.entries - 1)
        return (lambda: store.list_opt_outs(org, limit=PAGE, before_seq=before)), wanted

    try:
        for index in range(rounds + 1):
            shift = index % len(subjects)
            order = subjects[shift:] + subjects[:shift]
            for measurement in MEASUREMENTS:
                for subject in order:
                    for _ in range(batch):
                        fn, expect = call(measurement, subject)
                        began = time.perf_counter_ns()
                        got = await fn()
                        took = time.perf_counter_ns() - began
                        check(measurement, subject, got, expect)
                        if index > 0:
                            times[measurement][subject.label].append(took)
    finally:
        for store in stores.values():
            await store.close()
    return times


def measure_sql(
    subjects: list[Subject], misses: list[str], rounds: int, batch: int
) -> dict[str, dict[str, list[int]]]:
    """SQLite only: the same calls, timed the same way, made straight to the SQL functions the
    Store hands its reader threads (``storage.sqlite.opt_outs.get`` / ``page``), each
    subject on one connection opened as the Store opens them, on this thread: the database's
    own work, without the thread hop and the event loop (whose scheduling noise on a loaded
    machine is larger than the differences measured)."""
    from storage.sqlite import opt_outs
    from storage.sqlite.connection import connect

    conns = {s.label: connect(s.location, 5.0) for s in subjects}
    rng = random.Random(18)
    times: dict[str, dict[str, list[int]]] = {
        m: {s.label: [] for s in subjects} for m in MEASUREMENTS
    }
    try:
        for index in range(rounds + 1):
            shift = index % len(subjects)
            for measurement in MEASUREMENTS:
                for subject in subjects[shift:] + subjects[:shift]:
                    db, org = conns[subject.label], subject.org_id
                    for _ in range(batch):
                        if measurement == "lookup (hit)":
                            expect = rng.choice(subject.numbers)
                            began = time.perf_counter_ns()
                            got = opt_outs.get(db, org, expect)
                        elif measurement == "lookup (miss)":
                            number, expect = rng.choice(misses), None
                            began = time.perf_counter_ns()
                            got = opt_outs.get(db, org, number)
                        else:
                            before = None
                            expect = min(PAGE, subject.entries)
                            if measurement == "page at depth":
                                before = rng.choice(subject.cursors)
                                if subject.entries > PAGE:
                                    expect = min(PAGE, subject.entries - 1)
                            began = time.perf_counter_ns()
                            got = opt_outs.page(db, org, limit=PAGE, before_seq=before)
                        took = time.perf_counter_ns() - began
                        check(measurement, subject, got, expect)
                        if index > 0:
                            times[measurement][subject.label].append(took)
    finally:
        for db in conns.values():
            db.close()
    return times


def verdict_lines(summary: list[dict[str, Any]], big: str) -> list[str]:
    """One line per measurement: the big organization against one entry (and, for pages,
    against the 21-entry organization's page of the same 20 rows), aim <= AIM."""
    out = []
    for row in summary:
        ratio, full = row[big]["vs_baseline"], row[big]["vs_full_page"]
        line = f"{row['measurement']}: {big} entries {ratio:.2f}x one entry"
        verdict = f"(aim <= {AIM:.2f}x) {'met' if ratio <= AIM else 'NOT MET'}"
        if row["measurement"] in ("first page", "page at depth"):
            # One entry makes a page of one row; 21 entries a page of 20 like the big one.
            line += f", {full:.2f}x the 21-entry organization's page of 20 rows"
            verdict += f"; same page size {'met' if full <= AIM else 'NOT MET'}"
        out.append(line + " " + verdict)
    return out


def check(measurement: str, subject: Subject, got: Any, expect: Any) -> None:
    """Each call must answer what it was asked, or its timing means nothing."""
    if measurement == "lookup (hit)":
        ok = got is not None and got["phone_number"] == expect
    elif measurement == "lookup (miss)":
        ok = got is None
    else:
        ok = len(got[0]) == expect
    if not ok:
        raise AssertionError(f"{measurement} on {subject.label}: unexpected answer {got!r:.200}")


def summarize(times: dict[str, dict[str, list[int]]], labels: list[str]) -> list[dict[str, Any]]:
    """Median and p90 microseconds per call, and each subject's ratio to the baseline."""
    out = []
    for measurement, by_subject in times.items():
        row: dict[str, Any] = {"measurement": measurement, "calls": len(by_subject[BASELINE])}
        base = median(by_subject[BASELINE])
        full_page = median(by_subject[PAGE_SUBJECT])
        for label in labels:
            values = sorted(by_subject[label])
            row[label] = {
                "median_us": round(median(values) / 1000, 1),
                "p90_us": round(values[int(len(values) * 0.9)] / 1000, 1),
                "vs_baseline": round(median(values) / base, 3),
                "vs_full_page": round(median(values) / full_page, 3),
            }
        out.append(row)
    return out


def table(summary: list[dict[str, Any]], big: str) -> str:
    """Markdown: median microseconds per call for each subject; the big organization's ratios
    to the one-entry baseline and to the 21-entry organization (the same page of 20 rows)."""
    head = [
        "Store call",
        f"{big} entries µs",
        "1 entry µs",
        f"{big} / 1",
        "21 entries µs",
        f"{big} / 21",
        f"1 entry beside the {big} µs",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in summary:
        cells = [
            row["measurement"],
            f"{row[big]['median_us']:.1f}",
            f"{row[BASELINE]['median_us']:.1f}",
            f"{row[big]['vs_baseline']:.2f}x",
            f"{row[PAGE_SUBJECT]['median_us']:.1f}",
            f"{row[big]['vs_full_page']:.2f}x",
            f"{row[BESIDE]['median_us']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load() -> str:
    """The load average, for the record (the figures are only as quiet as the machine)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(args: argparse.Namespace, admin_url: str | None) -> int:
    """Build both databases, measure, print and save. Informational: 0 whatever the ratios
    (a wrong answer from the store raises)."""
    began = time.monotonic()
    big_label = f"{args.entries:,}"
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        dropping: list[str] = []
        try:
            if admin_url:
                big_db, name = pg_mode.create_database(admin_url)
                dropping.append(name)
                small_db, name = pg_mode.create_database(admin_url)
                dropping.append(name)
            else:
                big_db, small_db = str(Path(tmp) / "big.db"), str(Path(tmp) / "small.db")
            print(f"building: {args.entries:,} entries ({'PostgreSQL' if admin_url else 'SQLite'})")
            big_build = Build(big_db, Path(tmp) / "state-big")
            big, insert_s = big_build.org(big_label, numbers(args.entries, seed=1))
            print(f"  {big_label}: bulk-inserted in {insert_s:.1f}s", flush=True)
            same, _ = big_build.org(BESIDE, numbers(1, seed=2))
            small_build = Build(small_db, Path(tmp) / "state-small")
            one, _ = small_build.org(BASELINE, numbers(1, seed=3))
            page, _ = small_build.org(PAGE_SUBJECT, numbers(PAGE + 1, seed=4))
            subjects = [big, one, same, page]
            labels = [s.label for s in subjects]
            query_plans = plans(big_db, big)
            size = None if admin_url else Path(big_db).stat().st_size
            misses = numbers(100_000, seed=5, odd=True)
            print(
                f"measuring: {args.rounds} rounds x {args.batch} calls per measurement and"
                f" subject (load average {load()})",
                flush=True,
            )
            times = asyncio.run(measure(subjects, misses, args.rounds, args.batch))
            sql_times = None
            if not admin_url:
                sql_times = measure_sql(subjects, misses, args.rounds, args.batch)
        finally:
            for name in dropping:
                pg_mode.drop_database(admin_url, name)
    summary = summarize(times, labels)
    text = table(summary, big_label)
    backend = "PostgreSQL" if admin_url else "SQLite"
    print(f"\n{backend}: median µs per Store call ({args.rounds * args.batch:,} calls each)\n")
    print(text + "\n")
    verdicts = verdict_lines(summary, big_label)
    print("\n".join(verdicts))
    sql_summary = sql_text = sql_verdicts = None
    if sql_times is not None:
        sql_summary = summarize(sql_times, labels)
        sql_text = table(sql_summary, big_label)
        print(
            f"\n{backend}: median µs per call of the Store's SQL function alone (same calls,"
            " one connection, no reader thread)\n"
        )
        print(sql_text + "\n")
        sql_verdicts = verdict_lines(sql_summary, big_label)
        print("\n".join(sql_verdicts))
    for name, plan in query_plans.items():
        print(f"plan, {name}: {plan}")
    print(f"load average after: {load()}")
    out = BENCH / ("ledger-scale-postgresql.json" if admin_url else "ledger-scale.json")
    out.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "backend": backend,
                "entries": args.entries,
                "rounds": args.rounds,
                "batch": args.batch,
                "load_average_after": load(),
                "big_database_bytes": size,
                "plans": query_plans,
                "table": text,
                "summary": summary,
                "verdicts": verdicts,
                "sql_alone": {
                    "table": sql_text,
                    "summary": sql_summary,
                    "verdicts": sql_verdicts,
                },
                "wall_s": round(time.monotonic() - began, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args(argv)
    if args.entries < DEPTH + DEPTH_SPREAD + PAGE:
        print(f"note: fewer than {DEPTH + DEPTH_SPREAD + PAGE:,} entries: no page at depth")
    if args.postgresql:
        pg_mode.reexec_under_cluster()  # returns only with ORGSETTINGS_TEST_POSTGRES set
        return run(args, os.environ[pg_mode.ENV_VAR])
    return run(args, None)


if __name__ == "__main__":
    sys.exit(main())
