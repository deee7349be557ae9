"""BACKEND=postgresql: the throwaway cluster, a fresh database, x2 pinning and CPU accounting.

``run.py`` re-executes itself under ``tools/postgres_cluster.py run --`` when BACKEND=postgresql
and ORGSETTINGS_TEST_POSTGRES is unset; the cluster then lives exactly as long as the bench.
Inside, ``create_database`` makes a fresh database in that server (CREATE DATABASE, autocommit),
which every PostgreSQL target uses, and drops it at the end.

During every measured run (in both modes) the bench also reads the CPU time of each target's
process tree and, in this mode, of the PostgreSQL server's (the postmaster and its children,
when it runs on this machine), from /proc: the CPU milliseconds per request they show say where
a request's time goes. Other clusters on the machine (tests) are not counted.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "ORGSETTINGS_TEST_POSTGRES"
CLUSTER = Path(__file__).resolve().parent.parent / "tools" / "postgres_cluster.py"
RESULTS = "results-postgresql.json"
# BENCH_X2_PINNING: where the two instances of "orgsettings postgresql x2" run.
X2_PINNINGS = ("none", "split", "same")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def backend() -> str:
    """BACKEND: "sqlite" (default) or "postgresql"; anything else raises ValueError."""
    value = os.environ.get("BACKEND", "sqlite").strip().lower() or "sqlite"
    if value in ("postgres", "pg"):
        value = "postgresql"
    if value not in ("sqlite", "postgresql"):
        raise ValueError(f"BACKEND={value!r}: expected sqlite or postgresql")
    return value


def reexec_under_cluster(settings: dict[str, str] | None = None) -> None:
    """Replace this process with the same bench run under a throwaway PostgreSQL cluster
    (started with ``settings`` over the cluster tool's own), unless one is already given
    (ORGSETTINGS_TEST_POSTGRES). Returns only in the latter case."""
    if os.environ.get(ENV_VAR):
        return
    print(f"BACKEND=postgresql: starting a throwaway cluster ({CLUSTER.name} run)", flush=True)
    options = [
        arg for name, value in (settings or {}).items() for arg in ("--set", f"{name}={value}")
    ]
    argv = [sys.executable, str(CLUSTER), "run", *options, "--", sys.executable, *sys.argv]
    os.execv(sys.executable, argv)


def create_database(admin_url: str) -> tuple[str, str]:
    """CREATE DATABASE a fresh, uniquely named database in the server of ``admin_url`` (a
    postgresql:// URL); return (the URL of the new database, its name)."""
    import psycopg

    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}")), name


def postmaster_pid(admin_url: str) -> int | None:
    """The pid of the PostgreSQL server's postmaster when it runs on this machine (the parent
    of the backend serving one connection), else None: its process tree is PostgreSQL's CPU."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            parent = int(Path(f"/proc/{backend_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            # Still our server's backend (not a pid reused by another machine's server)?
            comm = Path(f"/proc/{parent}/comm").read_text().strip()
    except (psycopg.Error, OSError, ValueError, IndexError):
        return None
    return parent if comm.startswith("postgres") else None


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE ``name`` (its servers already stopped); errors are only printed."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as exc:
        print(f"note: could not drop database {name}: {exc}", flush=True)


def x2_cpus(server_cpu: int | None, wrk_cpu: int | None) -> tuple[list[int | None], str]:
    """CPUs of the two x2 instances per BENCH_X2_PINNING, and a line saying what that is.

    "none" (default): both unpinned, so the scheduler spreads the two instances, PostgreSQL's
    backends and wrk over both cores; "split": one instance on the servers' CPU, one on wrk's;
    "same": both on the servers' CPU, as every other target.
    """
    policy = os.environ.get("BENCH_X2_PINNING", "none").strip().lower() or "none"
    if policy not in X2_PINNINGS:
        raise ValueError(f"BENCH_X2_PINNING={policy!r}: expected one of {', '.join(X2_PINNINGS)}")
    if server_cpu is None or policy == "none":
        return [None, None], "x2 instances unpinned (any core; wrk stays pinned)"
    if policy == "split":
        return [server_cpu, wrk_cpu], f"x2 instances on CPU {server_cpu} and CPU {wrk_cpu}"
    return [server_cpu, server_cpu], f"x2 instances both on CPU {server_cpu}"


def _processes() -> dict[int, tuple[int, str, int]]:
    """Every process: pid -> (parent pid, comm, user + system CPU ticks)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        comm = text[text.find("(") + 1 : text.rfind(")")]
        rest = text[text.rfind(")") + 2 :].split()
        try:
            out[int(entry.name)] = (int(rest[1]), comm, int(rest[11]) + int(rest[12]))
        except (IndexError, ValueError):
            continue
    return out


def snapshot() -> dict[int, tuple[int, str, int]] | None:
    """The CPU counters of every process now, or None off Linux."""
    try:
        return _processes()
    except OSError:
        return None


def _tree(procs: dict[int, tuple[int, str, int]], roots: list[int]) -> set[int]:
    found = {pid for pid in roots if pid in procs}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def cpu_used(
    before: dict[int, tuple[int, str, int]] | None,
    after: dict[int, tuple[int, str, int]] | None,
    roots: list[int],
    postmaster: int | None,
) -> dict[str, float | None]:
    """CPU seconds the process trees under ``roots`` (the target's servers) and under
    ``postmaster`` (PostgreSQL's server, if given) used between two snapshots."""
    if before is None or after is None:
        return {"app_cpu_s": None, "pg_cpu_s": None}

    def used(pids: set[int]) -> float:
        ticks = sum(after[p][2] - before[p][2] for p in pids if p in before)
        return round(ticks / TICK, 3)

    app = used(_tree(after, roots))
    pg = used(_tree(after, [postmaster])) if postmaster is not None else None
    return {"app_cpu_s": app, "pg_cpu_s": pg}


def per_request(run: dict[str, Any], seconds: float) -> None:
    """Add CPU ms per request and cores busy for the app and PostgreSQL to ``run``."""
    requests = run.get("requests") or 0
    for part in ("app", "pg"):
        used = run.get(f"{part}_cpu_s")
        ok = used is not None and requests > 0
        run[f"{part}_cpu_ms_per_req"] = round(used * 1000 / requests, 3) if ok else None
        run[f"{part}_cores"] = round(used / seconds, 2) if used is not None and seconds else None
