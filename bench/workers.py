"""``serve --workers 2`` against one worker, on GET /v1/organization (README, "Workers").

Usage: ``.venv/bin/python bench/workers.py [ROUNDS] [SECONDS]`` (default 3 rounds of 10 s).

Three targets, each ``orgsettings serve`` with production settings (JSON access log on, to a
file) over its own copy of one fresh SQLite database with an organization and a key:

- ``1 worker``; ``2 workers``;
- ``2 workers, auth limit off`` (ORGSETTINGS_AUTH_FAILURES_PER_MINUTE=0): the A/B of the
  failed-authentication check, which then never touches the workers' shared table;
- with ``BENCH_BASELINE=DIR`` (a source tree of another commit, e.g. from ``git archive``),
  also ``2 workers, baseline``: that tree's code, run from it with this venv.

The servers are not pinned (two workers are meant to use both cores); wrk is pinned to CPU 1
(1 thread, 16 connections), so it shares a core with the second worker. Rounds interleave the
targets in rotating order, each run after a 2 s warm-up; the medians over the rounds go to
stdout and ``bench/workers.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pg_mode import cpu_used, snapshot
from run import cpu_busy
from server import Server, free_port
from wrk import run as wrk

ROOT = Path(__file__).resolve().parent.parent
ORGSETTINGS = str(Path(sys.executable).parent / "orgsettings")
ENV = {"ORGSETTINGS_JWT_SECRET": "bench-workers-secret-" + "b" * 32}
TARGETS: dict[str, tuple[int, dict[str, str]]] = {
    "1 worker": (1, {}),
    "2 workers": (2, {}),
    "2 workers, auth limit off": (2, {"ORGSETTINGS_AUTH_FAILURES_PER_MINUTE": "0"}),
}
WRK_CPU = 1
BASELINE = os.environ.get("BENCH_BASELINE")
if BASELINE:
    TARGETS["2 workers, baseline"] = (2, {})


def cli(db: Path, *args: str) -> dict[str, Any]:
    """One ``orgsettings --json`` command against ``db``."""
    out = subprocess.run(
        [ORGSETTINGS, "--db", str(db), *args, "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout)


def main() -> int:
    """Start the targets, run the rounds, print and save the medians."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        base = Path(tmp) / "seed" / "bench.db"
        base.parent.mkdir()
        cli(base, "init")
        org = cli(base, "org", "create", "--name", "Bench Workers")["id"]
        key = cli(base, "key", "create", "--org", org, "--scope", "org:read")["key"]
        servers: dict[str, Server] = {}
        try:
            for name, (workers, extra) in TARGETS.items():
                home = Path(tmp) / name.replace(" ", "_").replace(",", "")
                home.mkdir()
                shutil.copy(base, home / "bench.db")
                port = free_port()
                baseline = BASELINE is not None and name.endswith("baseline")
                program = [sys.executable, "-m", "handlers.cli.main"] if baseline else [ORGSETTINGS]
                cmd = [*program, "--db", str(home / "bench.db"), "serve", "--port", str(port)]
                server = Server(
                    [*cmd, "--workers", str(workers)],
                    port=port,
                    ready_path="/readyz",
                    env={**ENV, **extra},
                    log_path=home / "server.log",
                    cpu=None,
                    cwd=Path(BASELINE) if baseline and BASELINE else ROOT,
                )
                server.start()
                servers[name] = server
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
            headers = {"Authorization": f"Bearer {key}"}
            names = list(TARGETS)
            for round_ in range(rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    url = servers[name].base + "/v1/organization"
                    wrk(url, seconds=2, headers=headers, cpu=WRK_CPU)
                    busy = cpu_busy()
                    before = snapshot()
                    result = wrk(url, seconds=seconds, headers=headers, cpu=WRK_CPU)
                    assert servers[name].proc is not None
                    used = cpu_used(before, snapshot(), [servers[name].proc.pid], None)
                    assert result.errors == 0, result
                    cpu_ms = (used["app_cpu_s"] or 0) * 1000 / max(1, result.requests)
                    runs[name].append(
                        {**result.as_dict(), "busy_before": busy, "app_cpu_ms_per_req": cpu_ms}
                    )
                    print(
                        f"round {round_ + 1} {name}: {result.requests_per_s:,.0f} req/s "
                        f"p50 {result.p50_ms} ms p99 {result.p99_ms} ms, {cpu_ms:.3f} CPU ms/req "
                        f"(machine {busy:.0%} busy before)",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    summary = {
        name: {
            "req_s_median": statistics.median(r["requests_per_s"] for r in rs),
            "req_s_min": min(r["requests_per_s"] for r in rs),
            "req_s_max": max(r["requests_per_s"] for r in rs),
            "p50_ms_median": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in rs),
            "app_cpu_ms_per_req_median": statistics.median(r["app_cpu_ms_per_req"] for r in rs),
            "runs": rs,
        }
        for name, rs in runs.items()
    }
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "rounds": rounds,
        "seconds": seconds,
        "wrk": f"-t1 -c16, pinned to CPU {WRK_CPU}; servers unpinned",
        "baseline": BASELINE,
        "targets": summary,
    }
    (Path(__file__).parent / "workers.json").write_text(json.dumps(report, indent=1) + "\n")
    for name, s in summary.items():
        print(
            f"{name}: {s['req_s_median']:,.0f} req/s ({s['req_s_min']:,.0f}-"
            f"{s['req_s_max']:,.0f}), p50 {s['p50_ms_median']} ms, p99 {s['p99_ms_median']} ms, "
            f"{s['app_cpu_ms_per_req_median']:.3f} app CPU ms/req"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
