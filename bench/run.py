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

import report
import wrk
from targets import (
    BENCH,
    ENDPOINTS,
    KEYS_PER_ORG,
    LABELS,
    RANDOM_GET,
    RANDOM_ORGS,
    Endpoint,
    Target,
    make_server,
    preflight,
)

# Share of CPU used while every target idles, sampled before each round, above which we warn.
BUSY_LIMIT = 0.10
CONNECTIONS = 16


def start_all(
    names: list[str], endpoints: list[Endpoint], random_orgs: int, cpu: int | None, stack: ExitStack
) -> list[Target]:
    """Start every target (stopped by ``stack``, SIGTERM then wait) and preflight its endpoints."""
    started = []
    for name in names:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        setup, server = make_server(name, tmp, cpu, random_orgs if name == "orgsettings" else 0)
        if setup.seeding:
            seeded = setup.seeding
            print(
                f"{LABELS[name]}: bulk-seeded {seeded['organizations_added']:,} organizations and"
                f" {seeded['keys_added']:,} keys ({seeded['build_s']:.1f}s to build the rows,"
                f" {seeded['insert_s']:.1f}s to insert them)",
                flush=True,
            )
        stack.callback(server.stop)
        target = Target(name, setup, server, server.start())
        print(f"{LABELS[name]}: ready in {target.startup_s:.2f}s on port {server.port}", flush=True)
        for endpoint in endpoints:
            if endpoint.only is not None and name not in endpoint.only:
                continue
            status, detail = preflight(target, endpoint)
            target.preflight[endpoint.label] = status
            if not 200 <= status < 300:
                url = target.url(endpoint)
                print(f"  !! preflight {endpoint.method} {url}: {status} {detail}", flush=True)
        started.append(target)
    return started


def measure(
    target: Target, endpoint: Endpoint, seconds: float, warmup: float, cpu: int | None
) -> dict[str, Any]:
    """A warm-up then a measured wrk run of ``endpoint`` on ``target``; the run as a dict."""
    url, headers = target.url(endpoint), {"Authorization": target.auth(endpoint)}
    options = {
        "headers": headers,
        "script": endpoint.script,
        "script_args": target.script_args(endpoint),
        "cpu": cpu,
    }
    if warmup > 0:
        wrk.run(url, seconds=warmup, connections=CONNECTIONS, **options)
    before = cpu_times()
    result = wrk.run(url, seconds=seconds, connections=CONNECTIONS, **options)
    return {
        "target": target.name,
        "endpoint": endpoint.label,
        **result.as_dict(),
        "steal": steal_share(before, cpu_times()),
        "preflight_status": target.preflight[endpoint.label],
    }


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
                    run = measure(target, each, seconds, warmup, cpu)
                    run.update(round=index + 1, position=position)
                    run["cpu_busy_before_round"] = None if busy is None else round(busy, 3)
                    runs.append(run)
                    print_run(target, each, run)
    return runs, notes


def print_run(target: Target, endpoint: Endpoint, run: dict[str, Any]) -> None:
    """One line per measured run."""
    flag = f"  !! {run['errors']} ERRORS" if run["errors"] else ""
    steal = "" if run["steal"] is None else f", steal {run['steal']:.0%}"
    label = LABELS[target.name] + (" (random key)" if endpoint.cred == "random" else "")
    print(
        f"  {label:<28} {run['requests_per_s']:>8,.0f} req/s, "
        f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms{steal}{flag}",
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
    began = time.monotonic()
    rounds = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    warmup = float(os.environ.get("BENCH_WARMUP", "1"))
    wanted = {w.strip() for w in os.environ.get("BENCH_TARGETS", ",".join(LABELS)).split(",")}
    names = [t for t in LABELS if t in wanted]
    if not names:
        print(f"BENCH_TARGETS selects none of {','.join(LABELS)}")
        return 2
    random_orgs = int(os.environ.get("BENCH_RANDOM_ORGS", str(RANDOM_ORGS)))
    if os.environ.get("BENCH_RANDOM_KEYS", "1") == "0" or "orgsettings" not in names:
        random_orgs = 0
    endpoints = [*ENDPOINTS, RANDOM_GET] if random_orgs > 0 else list(ENDPOINTS)
    notes: list[str] = []
    cpus = pinning(notes)
    for note in notes:
        print(f"note: {note}")
    with ExitStack() as stack:
        started = start_all(names, endpoints, random_orgs, cpus[0], stack)
        runs, busy_notes = run_rounds(started, endpoints, rounds, seconds, warmup, cpus[1])
        notes += busy_notes
        for target in started:
            if any(r["errors"] for r in runs if r["target"] == target.name):
                print(f"\n{LABELS[target.name]} log tail:\n{target.server.tail()}", flush=True)
        startups = {t.name: round(t.startup_s, 3) for t in started}
        seeding = {t.name: t.setup.seeding for t in started if t.setup.seeding}
    rows = report.summarize(runs, names, [e.label for e in endpoints])
    text = report.table(rows, LABELS)
    checks = report.bar_check(rows, random_orgs * KEYS_PER_ORG)
    print(f"\nmedians over {rounds} interleaved rounds; ratios are medians of per-round ratios\n")
    print(f"{text}\n")
    for line in checks:
        print(f"orgsettings {line}")
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
    report.write_json(
        BENCH / "results.json",
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_s": round(wall, 1),
            "machine": machine(),
            "settings": {
                "rounds": rounds,
                "connections": CONNECTIONS,
                "wrk_threads": 1,
                "seconds": seconds,
                "warmup": warmup,
                "server_cpu": cpus[0],
                "wrk_cpu": cpus[1],
                "random_key_organizations": random_orgs,
            },
            "startup_s": startups,
            "bulk_seeding": seeding,
            "notes": notes,
            "bar": checks,
            "table": text,
            "medians": rows,
            "runs": runs,
        },
    )
    print(f"\nwritten: {BENCH / 'results.json'}")
    minutes, secs = divmod(round(wall), 60)
    print(f"total wall time: {minutes}m {secs:02d}s")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        sys.exit(130)
