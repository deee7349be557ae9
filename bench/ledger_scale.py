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

Both databases are put in memory before timing (``warm``: SQLite's file read once into the
operating system's cache; PostgreSQL's ledger table and indexes loaded by ``pg_prewarm`` into
shared_buffers, which ``--postgresql`` sizes at 512MB so the 1,000,000-entry ledger fits).

Measured twice, in interleaved rounds:

1. through the Store API (``open_store``, ``start``, then ``get_opt_out`` / ``list_opt_outs``,
   as the handlers call them; PostgreSQL: each pool holds its first connection before the first
   call), one call at a time;
2. the database's own work: on SQLite the SQL functions the Store hands its reader threads, on
   one connection on this thread; on PostgreSQL the server's execution time of the Store's
   statements under ``EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)``, with the buffers each call
   touched and read.

The calls: a lookup that finds its number (a random entry of the subject), one that does not (a
random number of the same range ending in an odd digit), the first page (limit 20) and a page
at depth (limit 20 before a cursor: for the big organization the seq of its entry
895,000-905,000 newest, random per call, so the page is one ~900,000 entries deep; for ``21``
its newest entry, the page then being its 20 others; for a one-entry organization a cursor just
above its entry, which is all there is). Each round takes one sample of ``--batch`` calls of
every measurement on every subject, the subjects' order rotating from round to round, after a
warm-up round that is not kept; each call is timed alone (``perf_counter_ns``) and a sample is
the median of its calls, so a call the scheduler delayed does not move it. The big
organization's ratio to a baseline is taken round by round, between two samples taken moments
apart under the same load; the tables show each subject's median microseconds per call and the
median of those ratios, with the range of their middle half and of them all. Baselines: the
one-entry organization, and for pages the 21-entry one (the same 20 rows). The aim is a median
ratio <= 1.10. Informational: the exit status is 0 whatever the ratios (a wrong answer fails
the run).

Standalone::

    .venv/bin/python bench/ledger_scale.py [--entries N] [--rounds R] [--batch B]
        [--postgresql [--shared-buffers SIZE]]

``--postgresql`` runs the same over PostgreSQL (under ``tools/postgres_cluster.py run`` with
``--set shared_buffers=SIZE`` unless ORGSETTINGS_TEST_POSTGRES names a server; two fresh
databases, dropped at the end). Results go to bench/ledger-scale.json
(bench/ledger-scale-postgresql.json).
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
from statistics import mean, median, quantiles
from typing import Any

import pg_mode

from storage import open_store, records

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent

ENTRIES = 1_000_000
PAGE = 20
DEPTH = 900_000
DEPTH_SPREAD = 5_000
AIM = 1.10
#: --postgresql: the throwaway cluster's shared_buffers. The 1,000,000-entry ledger is about
#: 300 MB of table and indexes; at the cluster tool's 128MB a random lookup misses the buffer
#: cache about once in two calls (see bench/README.md).
SHARED_BUFFERS = "512MB"
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
    """The query plans of the ledger's two reads for ``subject``: the statements the Store
    runs (storage/*/opt_outs.py), with a cursor at depth."""
    params = {
        "lookup": (subject.org_id, subject.numbers[0]),
        "page": (subject.org_id, subject.cursors[0]),
    }
    out = {}
    if location.startswith(("postgresql://", "postgres://")):
        import psycopg

        from storage.postgresql import opt_outs as pg_sql

        with psycopg.connect(location, autocommit=True) as conn:
            for name, sql in (("lookup", pg_sql._GET), ("page", pg_sql.page_statement(PAGE + 1))):
                rows = conn.execute("EXPLAIN " + sql, params[name])
                out[name] = " / ".join(r[0].strip() for r in rows)
        return out
    from storage.sqlite import opt_outs as sqlite_sql

    uri = f"file:{location}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        for name, sql in (("lookup", sqlite_sql._GET), ("page", sqlite_sql._PAGE)):
            given = params[name] if name == "lookup" else (*params[name], PAGE + 1)
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, given)
            out[name] = " / ".join(r[3] for r in rows)
    return out


def warm(location: str) -> str:
    """Put a database in memory before the first timed call, so no subject pays a first read
    from disk: SQLite, the file read through once (into the operating system's cache, SQLite's
    only shared cache); PostgreSQL, ``pg_prewarm`` of the ledger's table and indexes into
    shared_buffers (as much as they hold). What it did, in words."""
    if not location.startswith(("postgresql://", "postgres://")):
        with open(location, "rb") as handle:
            size = sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 20), b""))
        return f"file read ({size / 1e6:.0f} MB)"
    import psycopg

    with psycopg.connect(location, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except psycopg.Error as exc:
            return f"not prewarmed (pg_prewarm: {type(exc).__name__})"
        blocks = conn.execute(
            "SELECT sum(pg_prewarm(c.oid, 'buffer')) FROM pg_class c"
            " WHERE c.relname LIKE 'opt\\_outs%%' AND c.relkind IN ('r', 'i')"
        ).fetchone()[0]
        buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return f"pg_prewarm of {int(blocks or 0) * 8192 / 1e6:.0f} MB (shared_buffers {buffers})"


#: One call to make: the number looked up (or the cursor; None for a first page), and what the
#: answer must be (the number found, None, or the page's row count).
Call = tuple[Any, Any]
#: One sample: the median microseconds of its calls, and any other per-call figures (buffers).
Sample = tuple[float, dict[str, float]]
#: Times one batch of calls of one measurement on one subject.
Way = Callable[[str, Subject, list[Call]], Awaitable[Sample]]


def calls(
    measurement: str, subject: Subject, misses: list[str], rng: random.Random, count: int
) -> list[Call]:
    """``count`` calls of one measurement on one subject, drawn at random before timing."""
    out: list[Call] = []
    for _ in range(count):
        if measurement == "lookup (hit)":
            number = rng.choice(subject.numbers)
            out.append((number, number))
        elif measurement == "lookup (miss)":
            out.append((rng.choice(misses), None))
        elif measurement == "first page":
            out.append((None, min(PAGE, subject.entries)))
        else:
            rest = subject.entries if subject.entries <= PAGE else subject.entries - 1
            out.append((rng.choice(subject.cursors), min(PAGE, rest)))
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


def store_way(stores: dict[str, Any]) -> Way:
    """Through the Store API the handlers use (``get_opt_out``, ``list_opt_outs``): the batch's
    calls one after another, each timed alone; the sample is their median."""

    async def run(measurement: str, subject: Subject, batch: list[Call]) -> Sample:
        store, org = stores[subject.location], subject.org_id
        took = []
        for arg, expect in batch:
            began = time.perf_counter_ns()
            if measurement.startswith("lookup"):
                got = await store.get_opt_out(org, arg)
            else:
                got = await store.list_opt_outs(org, limit=PAGE, before_seq=arg)
            took.append(time.perf_counter_ns() - began)
            check(measurement, subject, got, expect)
        return median(took) / 1000, {}

    return run


def sqlite_way(conns: dict[str, Any]) -> Way:
    """SQLite only: the SQL functions the Store hands its reader threads
    (``storage.sqlite.opt_outs.get`` / ``page``), on one connection per subject opened as the
    Store opens them, on this thread: the database's own work, without the thread hop. Each
    call timed alone; the sample is their median."""
    from storage.sqlite import opt_outs

    async def run(measurement: str, subject: Subject, batch: list[Call]) -> Sample:
        db, org = conns[subject.label], subject.org_id
        took = []
        for arg, expect in batch:
            began = time.perf_counter_ns()
            if measurement.startswith("lookup"):
                got = opt_outs.get(db, org, arg)
            else:
                got = opt_outs.page(db, org, limit=PAGE, before_seq=arg)
            took.append(time.perf_counter_ns() - began)
            check(measurement, subject, got, expect)
        return median(took) / 1000, {}

    return run


def postgresql_way(conns: dict[str, Any]) -> Way:
    """PostgreSQL only: the Store's statements (``_GET``, ``page_statement``) under
    ``EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)``: the server's execution time per call (planning
    excluded; the sample is the median) and the shared buffers a call touched on average
    (``read``: not in shared_buffers, copied from the operating system's cache)."""
    from storage.postgresql import opt_outs

    async def run(measurement: str, subject: Subject, batch: list[Call]) -> Sample:
        conn, org = conns[subject.location], subject.org_id
        took: list[float] = []
        touched = read = 0.0
        for arg, expect in batch:
            if measurement.startswith("lookup"):
                sql, params, wanted = opt_outs._GET, [org, arg], 1 if expect else 0
            else:
                before = records.END_SEQ if arg is None else arg
                # The Store asks for one row more than the page, to know whether more follow.
                sql, params = opt_outs.page_statement(PAGE + 1), [org, before]
                rest = (
                    subject.entries
                    if arg is None or subject.entries <= PAGE
                    else subject.entries - 1
                )
                wanted = min(PAGE + 1, rest)
            text = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + sql
            [(explained,)] = conn.execute(text, params).fetchall()
            plan = explained[0]["Plan"]
            if plan["Actual Rows"] != wanted:
                raise AssertionError(
                    f"{measurement} on {subject.label}: {plan['Actual Rows']} rows"
                )
            took.append(explained[0]["Execution Time"] * 1000)
            touched += plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
            read += plan["Shared Read Blocks"]
        count = len(batch)
        return median(took), {"buffers": touched / count, "read": read / count}

    return run


async def measure(
    subjects: list[Subject], misses: list[str], rounds: int, batch: int, way: Way, seed: int
) -> dict[str, dict[str, list[Sample]]]:
    """Samples by measurement and subject label, one per round: every round times a batch of
    ``batch`` calls of every measurement on every subject, the subjects' order rotating from
    round to round, so the big organization's sample and the baseline's are taken seconds
    apart under the same load. Round 0 warms up (connections, prepared statements, the
    caches' upper levels) and is not kept. ``seed`` draws the numbers and cursors: each
    phase its own, so a phase does not find the pages of the previous one's calls cached."""
    rng = random.Random(seed)
    samples: dict[str, dict[str, list[Sample]]] = {
        m: {s.label: [] for s in subjects} for m in MEASUREMENTS
    }
    for index in range(rounds + 1):
        shift = index % len(subjects)
        order = subjects[shift:] + subjects[:shift]
        for measurement in MEASUREMENTS:
            for subject in order:
                sample = await way(
                    measurement, subject, calls(measurement, subject, misses, rng, batch)
                )
                if index > 0:
                    samples[measurement][subject.label].append(sample)
    return samples


async def measure_store(
    subjects: list[Subject], misses: list[str], rounds: int, batch: int
) -> dict[str, dict[str, list[Sample]]]:
    """``measure`` through the Store API (``open_store``, ``start``, as the service does)."""
    stores = {}
    for location in {s.location for s in subjects}:
        stores[location] = open_store(location, create=False)
        await stores[location].start()
    for store in stores.values():
        # PostgreSQL: a pool opens its first connection in the background; a call made before
        # it is ready waits and makes the pool grow, after which the calls alternate between
        # two connections (5-15 % slower here), in whichever store was called first only.
        # Both pools start the rounds with their one connection.
        pool = getattr(store, "_pool", None)
        if pool is not None:
            await pool.wait()
    try:
        return await measure(subjects, misses, rounds, batch, store_way(stores), seed=18)
    finally:
        for store in stores.values():
            await store.close()


def measure_database(
    subjects: list[Subject], misses: list[str], rounds: int, batch: int, postgres: bool
) -> dict[str, dict[str, list[Sample]]]:
    """``measure`` of the database's own work: SQLite's SQL functions on this thread, or
    PostgreSQL's execution time under EXPLAIN ANALYZE."""
    if postgres:
        import psycopg

        conns: dict[str, Any] = {
            s.location: psycopg.connect(s.location, autocommit=True) for s in subjects
        }
        way = postgresql_way(conns)
    else:
        from storage.sqlite.connection import connect

        conns = {s.label: connect(s.location, 5.0) for s in subjects}
        way = sqlite_way(conns)
    try:
        return asyncio.run(measure(subjects, misses, rounds, batch, way, seed=19))
    finally:
        for conn in conns.values():
            conn.close()


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    """Median, quartiles (the middle half lies between them), minimum and maximum."""
    q1, _, q3 = quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {
        "median": round(median(values), digits),
        "q1": round(q1, digits),
        "q3": round(q3, digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def summarize(
    samples: dict[str, dict[str, list[Sample]]], labels: list[str], big: str
) -> list[dict[str, Any]]:
    """Per measurement: each subject's microseconds per call (median and range over the
    rounds' samples, and the mean of any other figure), and the big organization's ratio to
    the one-entry baseline and to the 21-entry organization, taken round by round (each
    ratio of two samples taken under the same load) with its median and range."""
    out = []
    for measurement, by_label in samples.items():
        row: dict[str, Any] = {"measurement": measurement, "rounds": len(by_label[BASELINE])}
        for label in labels:
            cell: dict[str, Any] = {"us": spread([s[0] for s in by_label[label]], 1)}
            for figure in by_label[label][0][1]:
                cell[figure] = round(mean(s[1][figure] for s in by_label[label]), 2)
            row[label] = cell
        for name, base in (("vs_baseline", BASELINE), ("vs_full_page", PAGE_SUBJECT)):
            pairs = zip(by_label[big], by_label[base], strict=True)
            row[name] = spread([b[0] / a[0] for b, a in pairs])
        out.append(row)
    return out


def ratio_text(ratio: dict[str, float]) -> str:
    """``1.04x (0.98-1.09; 0.81-1.52)``: the median of the rounds' ratios, the range of their
    middle half, and the range of them all."""
    return (
        f"{ratio['median']:.2f}x ({ratio['q1']:.2f}-{ratio['q3']:.2f};"
        f" {ratio['min']:.2f}-{ratio['max']:.2f})"
    )


def verdict_lines(summary: list[dict[str, Any]], big: str) -> list[str]:
    """One line per measurement: the median of the rounds' ratios against one entry (and, for
    pages, against the 21-entry organization's page of the same 20 rows), aim <= AIM."""
    out = []
    for row in summary:
        ratio, full = row["vs_baseline"], row["vs_full_page"]
        line = f"{row['measurement']}: {big} entries {ratio_text(ratio)} one entry"
        verdict = f"(aim <= {AIM:.2f}x) {'met' if ratio['median'] <= AIM else 'NOT MET'}"
        if row["measurement"] in ("first page", "page at depth"):
            # One entry makes a page of one row; 21 entries a page of 20 like the big one.
            line += f", {ratio_text(full)} the 21-entry organization's page of 20 rows"
            verdict += f"; same page size {'met' if full['median'] <= AIM else 'NOT MET'}"
        out.append(line + " " + verdict)
    return out


def table(summary: list[dict[str, Any]], big: str, what: str) -> str:
    """Markdown: median microseconds per call for each subject; the big organization's ratios
    (median of the rounds, and their range) to the one-entry baseline and to the 21-entry
    organization (the same page of 20 rows); buffers per call when measured."""
    buffers = "buffers" in summary[0][BASELINE]
    head = [
        what,
        f"{big} entries µs",
        "1 entry µs",
        f"{big} / 1 (middle half; min-max)",
        "21 entries µs",
        f"{big} / 21 (middle half; min-max)",
        f"1 entry beside the {big} µs",
    ]
    if buffers:
        head += [f"buffers (read) per call: {big}", "1", "21", "1 beside"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in summary:
        cells = [
            row["measurement"],
            f"{row[big]['us']['median']:.1f}",
            f"{row[BASELINE]['us']['median']:.1f}",
            ratio_text(row["vs_baseline"]),
            f"{row[PAGE_SUBJECT]['us']['median']:.1f}",
            ratio_text(row["vs_full_page"]),
            f"{row[BESIDE]['us']['median']:.1f}",
        ]
        if buffers:
            for label in (big, BASELINE, PAGE_SUBJECT, BESIDE):
                cells.append(f"{row[label]['buffers']:.1f} ({row[label]['read']:.2f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load() -> str:
    """The load average, for the record (the figures are only as quiet as the machine)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def report(
    args: argparse.Namespace,
    postgres: bool,
    subjects: list[Subject],
    store_samples: dict[str, dict[str, list[Sample]]],
    db_samples: dict[str, dict[str, list[Sample]]],
    facts: dict[str, Any],
) -> dict[str, Any]:
    """Print both tables, their verdicts and the plans; the results to save."""
    big, labels = subjects[0].label, [s.label for s in subjects]
    backend = "PostgreSQL" if postgres else "SQLite"
    calls_each = f"{args.rounds} rounds x {args.batch} calls"
    db_what = "server execution (EXPLAIN ANALYZE)" if postgres else "SQL function alone"
    out: dict[str, Any] = {}
    for key, samples, what, title in (
        ("store", store_samples, "Store call", f"median µs per Store call ({calls_each})"),
        (
            "database",
            db_samples,
            db_what,
            (
                "median µs per call of the server's execution of the Store's statements"
                " (EXPLAIN (ANALYZE, BUFFERS, TIMING OFF); planning excluded)"
                if postgres
                else "median µs per call of the Store's SQL function alone (one connection,"
                " no reader thread)"
            )
            + f" ({calls_each})",
        ),
    ):
        summary = summarize(samples, labels, big)
        text = table(summary, big, what)
        verdicts = verdict_lines(summary, big)
        print(f"\n{backend}: {title}\n\n{text}\n\n" + "\n".join(verdicts))
        out[key] = {"table": text, "summary": summary, "verdicts": verdicts}
    for name, plan in facts["plans"].items():
        print(f"plan, {name}: {plan}")
    print(f"warm: {facts['warm']}; load average before {facts['load_before']}, after {load()}")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": backend,
        "entries": args.entries,
        "rounds": args.rounds,
        "batch": args.batch,
        **facts,
        "load_average_after": load(),
        **out,
    }


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
            misses = numbers(100_000, seed=5, odd=True)
            facts: dict[str, Any] = {
                "plans": plans(big_db, big),
                "big_database_bytes": None if admin_url else Path(big_db).stat().st_size,
                "warm": {"big": warm(big_db), "small": warm(small_db)},
                "load_before": load(),
            }
            print(
                f"measuring: {args.rounds} rounds x {args.batch} calls per measurement and"
                f" subject, through the Store, then the database alone (load average"
                f" {facts['load_before']})",
                flush=True,
            )
            store_samples = asyncio.run(measure_store(subjects, misses, args.rounds, args.batch))
            db_samples = measure_database(
                subjects, misses, args.rounds, args.batch, postgres=admin_url is not None
            )
        finally:
            for name in dropping:
                pg_mode.drop_database(admin_url, name)
    results = report(args, admin_url is not None, subjects, store_samples, db_samples, facts)
    results["wall_s"] = round(time.monotonic() - began, 1)
    out = BENCH / ("ledger-scale-postgresql.json" if admin_url else "ledger-scale.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument(
        "--shared-buffers",
        default=SHARED_BUFFERS,
        help="--postgresql: the throwaway cluster's shared_buffers (default %(default)s: holds"
        " the 1,000,000-entry ledger; the cluster tool's own is 128MB)",
    )
    args = parser.parse_args(argv)
    if args.entries < DEPTH + DEPTH_SPREAD + PAGE:
        print(f"note: fewer than {DEPTH + DEPTH_SPREAD + PAGE:,} entries: no page at depth")
    if args.postgresql:
        # Returns only with ORGSETTINGS_TEST_POSTGRES set.
        pg_mode.reexec_under_cluster({"shared_buffers": args.shared_buffers})
        return run(args, os.environ[pg_mode.ENV_VAR])
    return run(args, None)


if __name__ == "__main__":
    sys.exit(main())
