"""Benchmark orgsettings against stock Connexion, FastAPI and a bare-Starlette ceiling.

Every target is started on a free loopback port over a fresh temporary database, pinned to CPU 0,
and driven by wrk pinned to CPU 1 (16 connections, 1 thread): a warm-up, then a measured run, for
GET /v1/organization, PATCH /v1/organization and PUT /api/.../contact-protection-settings. The
table goes to stdout and, with machine information, to bench/results.json.

Environment: BENCH_SECONDS (measured run, default 8), BENCH_WARMUP (default 2), BENCH_TARGETS
(comma-separated subset of orgsettings,connexion,fastapi,starlette).
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import report
import wrk
from peers import common
from server import Server, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
LABELS = {
    "orgsettings": "orgsettings",
    "connexion": "Connexion 3 stock",
    "fastapi": "FastAPI (sync)",
    "starlette": "Starlette ceiling",
}
PEER_MODULES = {
    "connexion": "connexion_stock",
    "fastapi": "fastapi_app",
    "starlette": "starlette_ceiling",
}
# Share of CPU used by other processes, idle-sampled before each target, above which we warn.
BUSY_LIMIT = 0.10
PUT_PATH = "/api/organizations/{org}/contact-protection-settings"
# (endpoint label, method, path, wrk Lua script, which credential, sample body)
ENDPOINTS = [
    ("GET /v1/organization", "GET", "/v1/organization", None, "v1", None),
    (
        "PATCH /v1/organization",
        "PATCH",
        "/v1/organization",
        "patch.lua",
        "v1",
        {"message_retention_days": 31},
    ),
    (
        "PUT /api/.../contact-protection-settings",
        "PUT",
        PUT_PATH,
        "put.lua",
        "api",
        {"contactProtectionPeriod": 1},
    ),
]


@dataclass
class Setup:
    """How to start one target and what credentials to send it."""

    cmd: list[str]
    env: dict[str, str]
    ready_path: str
    org_id: str
    v1_auth: str
    api_auth: str
    ready_headers: dict[str, str] = field(default_factory=dict)


def orgsettings_setup(tmp: Path) -> Setup:
    """orgsettings as production runs it (one worker, request log on) with an org, key, token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    env["ORGSETTINGS_JWT_SECRET"] = secrets.token_urlsafe(48)
    cli = [str(BIN / "orgsettings"), "--db", str(tmp / "bench.db")]

    def call(*args: str) -> dict[str, Any]:
        out = subprocess.run(
            [*cli, *args, "--json"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout)

    org_id = call("org", "create", "--name", "Bench")["id"]
    scopes = ("org:read", "org:admin:write", "audit:read")
    key = call("key", "create", "--org", org_id, *(a for s in scopes for a in ("--scope", s)))
    token = call(
        "token", "create", "--org", org_id, "--role", "ADMIN", "--sub", "bench", "--ttl", "86400"
    )
    return Setup(
        cmd=[*cli, "serve", "--port", "{port}"],
        env={"ORGSETTINGS_JWT_SECRET": env["ORGSETTINGS_JWT_SECRET"]},
        ready_path="/readyz",
        org_id=org_id,
        v1_auth=f"Bearer {key['key']}",
        api_auth=f"Bearer {token['token']}",
    )


def peer_setup(name: str, tmp: Path) -> Setup:
    """A peer served by uvicorn (one worker, no access log) over its own seeded database."""
    db = tmp / "peer.db"
    key = "am_live_" + secrets.token_hex(20)
    org_id = common.seed(str(db), key)
    cmd = [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH / "peers"),
        f"{PEER_MODULES[name]}:app",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return Setup(
        cmd=cmd,
        env={common.DB_ENV: str(db)},
        ready_path="/v1/organization",
        ready_headers={"Authorization": f"Bearer {key}"},
        org_id=org_id,
        v1_auth=f"Bearer {key}",
        api_auth="Bearer any-token",
    )


def preflight(url: str, method: str, auth: str, body: Any) -> tuple[int, str]:
    """One request by hand before wrk, so a misconfigured target shows its error body."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")[:300]


def bench_target(
    name: str, cpus: tuple[int | None, int | None], seconds: float, warmup: float
) -> list[dict[str, Any]]:
    """Start one target, run every endpoint against it, stop it; return the rows."""
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmpdir:
        tmp = Path(tmpdir)
        setup = orgsettings_setup(tmp) if name == "orgsettings" else peer_setup(name, tmp)
        port = free_port()
        server = Server(
            [part.replace("{port}", str(port)) for part in setup.cmd],
            port=port,
            ready_path=setup.ready_path,
            ready_headers=setup.ready_headers,
            env=setup.env,
            log_path=tmp / "server.log",
            cpu=cpus[0],
            cwd=ROOT,
        )
        startup = server.start()
        print(f"{LABELS[name]}: ready in {startup:.2f}s on port {port}", flush=True)
        try:
            for label, method, path, script, cred, body in ENDPOINTS:
                url = server.base + path.format(org=setup.org_id)
                auth = setup.v1_auth if cred == "v1" else setup.api_auth
                status, detail = preflight(url, method, auth, body)
                if not 200 <= status < 300:
                    print(f"  !! preflight {method} {url}: {status} {detail}", flush=True)
                headers = {"Authorization": auth}
                if warmup > 0:
                    wrk.run(url, seconds=warmup, headers=headers, script=script, cpu=cpus[1])
                result = wrk.run(url, seconds=seconds, headers=headers, script=script, cpu=cpus[1])
                row = {
                    "target": name,
                    "endpoint": label,
                    **result.as_dict(),
                    "preflight_status": status,
                    "startup_s": round(startup, 3),
                }
                rows.append(row)
                flag = f"  !! {result.errors} ERRORS" if result.errors else ""
                print(
                    f"  {label}: {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f}"
                    f" ms, p99 {result.p99_ms:.2f} ms{flag}",
                    flush=True,
                )
        finally:
            server.stop()
            if any(r["errors"] for r in rows):
                print(f"  server log tail:\n{server.tail()}", flush=True)
    return rows


def cpu_busy(seconds: float = 0.5) -> float | None:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat), or None off Linux.

    Taken while no target runs, it shows load from other processes that skews the figures.
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
    """CPUs for (server, wrk): 0 and 1, or no pinning with a note saying why."""
    if not shutil.which("taskset"):
        notes.append("taskset not found (util-linux): server and wrk run unpinned")
        return None, None
    if (os.cpu_count() or 1) < 2:
        notes.append("fewer than 2 CPUs: server and wrk run unpinned, sharing a core")
        return None, None
    return 0, 1


def main() -> int:
    """Run every selected target and print and save the table; exit 1 if any run had errors."""
    if not shutil.which("wrk"):
        print("wrk not found: install it (apt-get install -y wrk) or run `make bench`")
        return 2
    seconds = float(os.environ.get("BENCH_SECONDS", "8"))
    warmup = float(os.environ.get("BENCH_WARMUP", "2"))
    wanted = os.environ.get("BENCH_TARGETS", ",".join(LABELS)).split(",")
    targets = [t for t in LABELS if t in {w.strip() for w in wanted}]
    notes: list[str] = []
    cpus = pinning(notes)
    for note in notes:
        print(f"note: {note}")
    rows = []
    for name in targets:
        busy = cpu_busy()
        if busy is not None and busy > BUSY_LIMIT:
            note = f"machine busy before {name}: {busy:.0%} CPU used by other processes"
            print(f"note: {note}; its figures are unreliable", flush=True)
            notes.append(note)
        target_rows = bench_target(name, cpus, seconds, warmup)
        for row in target_rows:
            row["cpu_busy_before"] = None if busy is None else round(busy, 3)
        rows += target_rows
    report.add_ratios(rows)
    text = report.table(rows, LABELS)
    checks = report.bar_check(rows)
    print(f"\n{text}\n")
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
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    report.write_json(
        BENCH / "results.json",
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "nproc": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0:1],
            },
            "settings": {
                "connections": 16,
                "wrk_threads": 1,
                "seconds": seconds,
                "warmup": warmup,
                "server_cpu": cpus[0],
                "wrk_cpu": cpus[1],
            },
            "notes": notes,
            "bar": checks,
            "table": text,
            "results": rows,
        },
    )
    print(f"\nwritten: {BENCH / 'results.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
