"""Benchmark orgsettings against stock Connexion (FlaskApp, AsyncApp), FastAPI and a ceiling.

Every selected target is started once, on its own free loopback port over its own temporary
database, all pinned to CPU 0 (an idle server uses no CPU), and preflighted with one request per
endpoint. Then come BENCH_ROUNDS interleaved rounds: in each, for each endpoint, every target in
turn gets a warm-up and a measured wrk run (wrk pinned to CPU 1, 16 connections, 1 thread), the
target order rotating from round to round. On a VM whose speed drifts over minutes this keeps
the runs being compared close together in time. orgsettings' database also holds 100,000 more
organizations with two keys each, and right after its single-key GET run comes a GET run with a
random one of those 200,000 keys per request. The table of medians goes to stdout and, with
every individual run and machine information, to bench/results.json.

Environment: BENCH_ROUNDS (default 3), BENCH_SECONDS (measured run, default 5), BENCH_WARMUP
(default 1), BENCH_TARGETS (comma-separated subset of
orgsettings,connexion,asyncapp,fastapi,starlette), BENCH_RANDOM_KEYS (0 skips the bulk seeding
and the random-key GET), BENCH_RANDOM_ORGS (organizations bulk-seeded, default 100000).

BACKEND=postgresql (default sqlite): the bench re-executes itself under
tools/postgres_cluster.py (a throwaway cluster, unless ORGSETTINGS_TEST_POSTGRES already names a
server), creates a fresh database in it and measures GET and PATCH /v1/organization on
"orgsettings sqlite", "orgsettings postgresql" (one instance) and "orgsettings postgresql x2"
(two instances over the same database, one wrk process per instance); BENCH_TARGETS then picks
from orgsettings,postgresql,postgresql-x2 (and the peers), BENCH_X2_PINNING (none, split, same)
places the two instances. Results go to bench/results-postgresql.json (bench/pg_mode.py).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pg_mode
import report
import wrk
from targets import (
    BENCH,
    ENDPOINTS,
    INBOUND,
    INSTANCES,
    KEYS_PER_ORG,
    LABELS,
    MESSAGING,
    PG_LABELS,
    RANDOM_GET,
    RANDOM_ORGS,
    Endpoint,
    Target,
    inbound_check,
    make_servers,
    messaging_check,
    missed_check,
    preflight,
    seed_messaging,
)

# Share of CPU used while every target idles, sampled before each round, above which we warn.
BUSY_LIMIT = 0.10
CONNECTIONS = 16


def start_all(
    names: list[str],
    endpoints: list[Endpoint],
    random_orgs: int,
    cpu: int | None,
    stack: ExitStack,
    *,
    labels: dict[str, str] = LABELS,
    pg_url: str | None = None,
    x2_cpus: list[int | None] | None = None,
) -> list[Target]:
    """Start every target (stopped by ``stack``, SIGTERM then wait) and preflight its endpoints.

    The PostgreSQL targets (those of PG_LABELS other than orgsettings) all use ``pg_url``, one
    database: "postgresql-x2" runs over the rows "postgresql" seeded, each target's own org.
    A target of INSTANCES gets that many servers, pinned to ``x2_cpus``.
    """
    started = []
    for name in names:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        db = pg_url if name in PG_LABELS and name != "orgsettings" else None
        cpus = (x2_cpus or [cpu] * INSTANCES[name]) if name in INSTANCES else [cpu]
        orgs = random_orgs if name == "orgsettings" else 0
        setup, servers = make_servers(name, tmp, cpus, orgs, db)
        if setup.seeding:
            seeded = setup.seeding
            print(
                f"{labels[name]}: bulk-seeded {seeded['organizations_added']:,} organizations and"
                f" {seeded['keys_added']:,} keys ({seeded['build_s']:.1f}s to build the rows,"
                f" {seeded['insert_s']:.1f}s to insert them)",
                flush=True,
            )
        for server in servers:
            stack.callback(server.stop)
        startup = max(server.start() for server in servers)
        target = Target(name, setup, servers[0], startup, others=servers[1:])
        ports = ", ".join(str(server.port) for server in servers)
        print(f"{labels[name]}: ready in {target.startup_s:.2f}s on port {ports}", flush=True)
        if any(e in endpoints for e in MESSAGING) and name == "orgsettings":
            seed_messaging(target)
            print(
                f"{labels[name]}: seeded quiet hours 21:00-08:00 (queue), 5 opt-outs and the"
                " missed-call auto-message",
                flush=True,
            )
        for endpoint in endpoints:
            if endpoint.only is not None and name not in endpoint.only:
                continue
            status, detail = preflight(target, endpoint)
            target.preflight[endpoint.label] = status
            if not 200 <= status < 300:
                url = target.url(endpoint)
                print(f"  !! preflight {endpoint.method} {url}: {status} {detail}", flush=True)
        if any(e in endpoints for e in MESSAGING) and name == "orgsettings":
            target.messaging = messaging_check(target)
            check = target.messaging
            counts = ", ".join(f"{k} {v}" for k, v in check["send_decisions"].items())
            print(
                f"  send decisions ({check['send_decisions_status']}): {counts};"
                f" missed call ({check['missed_call_status']}): {check['missed_call_action']}",
                flush=True,
            )
        started.append(target)
    return started


def measure(
    target: Target,
    endpoint: Endpoint,
    seconds: float,
    warmup: float,
    cpu: int | None,
    postmaster: int | None = None,
) -> dict[str, Any]:
    """A warm-up then a measured wrk run of ``endpoint`` on ``target``; the run as a dict.

    A target with several instances gets one wrk process per instance, all at once, the
    connections split between them (``wrk.run_split``: req/s summed, p50/p99 the larger of the
    instances'). The CPU time of the target's processes (and of PostgreSQL's, the process tree
    of ``postmaster``) over the measured run is recorded too.
    """
    urls, headers = target.urls(endpoint), {"Authorization": target.auth(endpoint)}
    options = {"headers": headers, "script": endpoint.script, "cpu": cpu}

    def drive(length: float) -> tuple[wrk.WrkResult, list[wrk.WrkResult]]:
        # Script arguments per wrk run: inbound.lua's STOPs need numbers no run used before.
        options["script_args"] = target.script_args(endpoint)
        if len(urls) == 1:
            out = wrk.run(urls[0], seconds=length, connections=CONNECTIONS, **options), []
        else:
            out = wrk.run_split(urls, seconds=length, connections=CONNECTIONS, **options)
        sock = sum(out[0].socket_errors.values())
        target.ran(endpoint, out[0].requests, sock, CONNECTIONS)
        return out

    if warmup > 0:
        drive(warmup)
    before, procs_before, began = cpu_times(), pg_mode.snapshot(), time.monotonic()
    result, parts = drive(seconds)
    elapsed, procs_after = time.monotonic() - began, pg_mode.snapshot()
    roots = [s.proc.pid for s in target.servers if s.proc is not None]
    run = {
        "target": target.name,
        "endpoint": endpoint.label,
        **result.as_dict(),
        "steal": steal_share(before, cpu_times()),
        "preflight_status": target.preflight[endpoint.label],
        **pg_mode.cpu_used(procs_before, procs_after, roots, postmaster),
    }
    pg_mode.per_request(run, elapsed)
    if parts:
        run["instances"] = [part.as_dict() for part in parts]
    return run


def cpu_times() -> list[int] | None:
    """The machine's aggregate CPU counters from /proc/stat (None off Linux)."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two samples ("st")."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after) - sum(before)
    return round((after[7] - before[7]) / total, 3) if total > 0 else None


def run_rounds(
    started: list[Target],
    endpoints: list[Endpoint],
    rounds: int,
    seconds: float,
    warmup: float,
    cpu: int | None,
    labels: dict[str, str] = LABELS,
    postmaster: int | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every round, every endpoint, every target (order rotated per round); runs and notes.

    An endpoint with ``after`` is run right after that endpoint's run on each of its targets.
    """
    runs, notes = [], []
    followers = [e for e in endpoints if e.after is not None]
    for index in range(rounds):
        shift = index % len(started)
        order = started[shift:] + started[:shift]
        busy = cpu_busy()
        print(f"\nround {index + 1}/{rounds}: {', '.join(t.name for t in order)}", flush=True)
        if busy is not None and busy > BUSY_LIMIT:
            note = f"machine busy before round {index + 1}: {busy:.0%} CPU used while targets idle"
            print(f"note: {note}; its figures are unreliable", flush=True)
            notes.append(note)
        for endpoint in endpoints:
            if endpoint.after is not None:
                continue
            print(f" {endpoint.label}", flush=True)
            for position, target in enumerate(order):
                todo = [endpoint] + [f for f in followers if f.after == endpoint.label]
                for each in todo:
                    if each.only is not None and target.name not in each.only:
                        continue
                    run = measure(target, each, seconds, warmup, cpu, postmaster)
                    run.update(round=index + 1, position=position)
                    run["cpu_busy_before_round"] = None if busy is None else round(busy, 3)
                    runs.append(run)
                    print_run(target, each, run, labels)
    return runs, notes


def print_run(
    target: Target, endpoint: Endpoint, run: dict[str, Any], labels: dict[str, str] = LABELS
) -> None:
    """One line per measured run (with PostgreSQL, the CPU each side used per request)."""
    flag = f"  !! {run['errors']} ERRORS" if run["errors"] else ""
    steal = "" if run["steal"] is None else f", steal {run['steal']:.0%}"
    cpu = ""
    if run.get("pg_cpu_ms_per_req") is not None and run.get("app_cpu_ms_per_req") is not None:
        cpu = (
            f", CPU/req app {run['app_cpu_ms_per_req']:.2f} ms ({run['app_cores']:.2f} cores)"
            f" pg {run['pg_cpu_ms_per_req']:.2f} ms ({run['pg_cores']:.2f} cores)"
        )
    label = labels[target.name]
    if endpoint.cred == "random":
        label += " (random key)"
    elif endpoint.after is not None:
        label += f" {endpoint.label}"
    print(
        f"  {label:<28} {run['requests_per_s']:>8,.0f} req/s, "
        f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms{steal}{cpu}{flag}",
        flush=True,
    )


def cpu_busy(seconds: float = 0.5) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat), or None off Linux.

    Taken while no wrk runs, it shows load from other processes that skews the figures.
    """

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    return 1.0 - (idle1 - idle0) / elapsed if elapsed > 0 else None


def pinning(notes: list[str]) -> tuple[int | None, int | None]:
    """CPUs for (servers, wrk): 0 and 1, or no pinning with a note saying why."""
    if not shutil.which("taskset"):
        notes.append("taskset not found (util-linux): servers and wrk run unpinned")
        return None, None
    if (os.cpu_count() or 1) < 2:
        notes.append("fewer than 2 CPUs: servers and wrk run unpinned, sharing a core")
        return None, None
    return 0, 1


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1],
    }


def main() -> int:
    """Run every selected target in rounds, print and save the medians; exit 1 on any error."""
    if not shutil.which("wrk"):
        print("wrk not found: install it (apt-get install -y wrk) or run `make bench`")
        return 2
    try:
        backend = pg_mode.backend()
    except ValueError as exc:
        print(exc)
        return 2
    postgres = backend == "postgresql"
    if postgres:
        pg_mode.reexec_under_cluster()  # returns only inside the cluster
    began = time.monotonic()
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    warmup = float(os.environ.get("BENCH_WARMUP", "1"))
    labels = {**LABELS, **PG_LABELS} if postgres else LABELS
    default = PG_LABELS if postgres else LABELS
    wanted = {w.strip() for w in os.environ.get("BENCH_TARGETS", ",".join(default)).split(",")}
    names = [t for t in labels if t in wanted]
    if not names:
        print(f"BENCH_TARGETS selects none of {','.join(labels)}")
        return 2
    notes: list[str] = []
    random_orgs = int(os.environ.get("BENCH_RANDOM_ORGS", str(RANDOM_ORGS)))
    if os.environ.get("BENCH_RANDOM_KEYS", "1") == "0" or "orgsettings" not in names:
        random_orgs = 0
    if postgres:
        if random_orgs > 0:
            notes.append(
                "BACKEND=postgresql: random-key GET scenario skipped (bench/bulk_seed.py seeds"
                " SQLite only), and PUT not driven: GET and PATCH /v1/organization only"
            )
        random_orgs = 0
        endpoints = [e for e in ENDPOINTS if e.path == "/v1/organization"]
    else:
        endpoints = [*ENDPOINTS, RANDOM_GET] if random_orgs > 0 else list(ENDPOINTS)
        if "orgsettings" in names:
            endpoints += INBOUND + MESSAGING
    cpus = pinning(notes)
    x2_cpus: list[int | None] | None = None
    if postgres and any(name in INSTANCES for name in names):
        try:
            x2_cpus, x2_note = pg_mode.x2_cpus(*cpus)
        except ValueError as exc:
            print(exc)
            return 2
        notes.append(
            f"{x2_note}; PostgreSQL's own processes are never pinned;"
            f" wrk: one process per instance, {CONNECTIONS // 2} connections each"
        )
    for note in notes:
        print(f"note: {note}")
    pg_url = db_name = None
    admin_url = os.environ.get(pg_mode.ENV_VAR)
    with ExitStack() as stack:
        if postgres and admin_url and any(n in PG_LABELS and n != "orgsettings" for n in names):
            pg_url, db_name = pg_mode.create_database(admin_url)
            # Registered first, so it runs last: after every server has stopped.
            stack.callback(pg_mode.drop_database, admin_url, db_name)
            print(f"PostgreSQL: created database {db_name}", flush=True)
        started = start_all(
            names,
            endpoints,
            random_orgs,
            cpus[0],
            stack,
            labels=labels,
            pg_url=pg_url,
            x2_cpus=x2_cpus,
        )
        postmaster = pg_mode.postmaster_pid(admin_url) if postgres and admin_url else None
        if postgres and postmaster is None:
            notes.append("PostgreSQL's server is not a local process: its CPU is not measured")
        runs, busy_notes = run_rounds(
            started, endpoints, rounds, seconds, warmup, cpus[1], labels, postmaster
        )
        notes += busy_notes
        inbound = {t.name: check for t in started if (check := inbound_check(t)) is not None}
        for name, check in inbound.items():
            line = (
                f"{labels[name]}: {check['ledger_entries']:,} ledger entries for"
                f" {check['stop_requests_completed']:,} STOP requests completed (preflight and"
                f" warm-ups included; up to {check['stop_requests_maybe_sent']:,} more in flight"
                " as wrk stopped): "
            )
            if check["every_stop_wrote"]:
                line += "every STOP was a new number's write"
            else:
                line += "NOT every STOP wrote an entry"
                notes.append(f"{labels[name]}: not every inbound STOP wrote a ledger entry")
            print(f"\n{line}", flush=True)
        missed = {t.name: check for t in started if (check := missed_check(t)) is not None}
        for name, check in missed.items():
            line = (
                f"{labels[name]}: {check['contact_rows']:,} contact-protection rows for"
                f" {check['calls_completed']:,} missed calls completed (preflight, check and"
                f" warm-ups included; up to {check['calls_maybe_sent']:,} more in flight as wrk"
                " stopped): "
            )
            if check["every_call_wrote"]:
                line += "every missed call was a new caller's write"
            else:
                line += "NOT every missed call wrote a row"
                notes.append(f"{labels[name]}: not every missed call wrote a contact row")
            print(line, flush=True)
        messaging = {t.name: t.messaging for t in started if t.messaging}
        for target in started:
            if any(r["errors"] for r in runs if r["target"] == target.name):
                for server in target.servers:
                    print(f"\n{labels[target.name]} log tail:\n{server.tail()}", flush=True)
        startups = {t.name: round(t.startup_s, 3) for t in started}
        seeding = {t.name: t.setup.seeding for t in started if t.setup.seeding}
    labels_used = [e.label for e in endpoints]
    if postgres:
        rows = report.summarize(runs, names, labels_used, report.PG_RATIOS)
        text = report.pg_table(rows, labels)
        checks = report.pg_check(rows)
    else:
        rows = report.summarize(runs, names, labels_used)
        text = report.table(rows, labels)
        checks = report.bar_check(rows, random_orgs * KEYS_PER_ORG)
    print(f"\nmedians over {rounds} interleaved rounds; ratios are medians of per-round ratios\n")
    print(f"{text}\n")
    for line in checks:
        print(line if postgres else f"orgsettings {line}")
    for note in notes:
        print(f"note: {note}")
    failed = [r for r in rows if r["errors"]]
    if failed:
        print(
            "\n!!!!! RUNS WITH ERRORS (figures not comparable): "
            + ", ".join(f"{r['target']} {r['endpoint']}" for r in failed)
            + " !!!!!"
        )
    wall = time.monotonic() - began
    settings: dict[str, Any] = {
        "backend": backend,
        "rounds": rounds,
        "connections": CONNECTIONS,
        "wrk_threads": 1,
        "seconds": seconds,
        "warmup": warmup,
        "server_cpu": cpus[0],
        "wrk_cpu": cpus[1],
        "random_key_organizations": random_orgs,
    }
    if postgres:
        settings.update(
            x2_cpus=x2_cpus,
            x2_pinning=os.environ.get("BENCH_X2_PINNING", "none"),
            x2_load="one wrk process per instance, connections split evenly; req/s summed,"
            " p50/p99 the larger of the instances'",
            postgresql_database=db_name,
            postgresql_server=postgres_server(admin_url),
        )
    out = BENCH / (pg_mode.RESULTS if postgres else "results.json")
    report.write_json(
        out,
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_s": round(wall, 1),
            "machine": machine(),
            "settings": settings,
            "startup_s": startups,
            "bulk_seeding": seeding,
            "inbound_stop_check": inbound,
            "messaging_check": messaging,
            "missed_call_check": missed,
            "notes": notes,
            "bar": checks,
            "table": text,
            "medians": rows,
            "runs": runs,
        },
    )
    print(f"\nwritten: {out}")
    minutes, secs = divmod(round(wall), 60)
    print(f"total wall time: {minutes}m {secs:02d}s")
    return 1 if failed else 0


def postgres_server(admin_url: str | None) -> dict[str, Any] | None:
    """The PostgreSQL server's version and the settings that matter for these figures."""
    if not admin_url:
        return None
    import psycopg

    names = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "max_connections")
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            info: dict[str, Any] = {"version": conn.execute("SHOW server_version").fetchone()[0]}
            for name in names:
                info[name] = conn.execute(f"SHOW {name}").fetchone()[0]
    except psycopg.Error as exc:
        return {"error": str(exc)}
    return info


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
