"""The targets under test and the endpoints driven: how to seed, start and preflight each one."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bulk_seed
from peers import common
from server import Server, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
LABELS = {
    "orgsettings": "orgsettings",
    "connexion": "Connexion 3 FlaskApp stock",
    "asyncapp": "Connexion 3 AsyncApp stock",
    "fastapi": "FastAPI (sync)",
    "starlette": "Starlette ceiling",
}
PEER_MODULES = {
    "connexion": "connexion_stock",
    "asyncapp": "asyncapp_stock",
    "fastapi": "fastapi_app",
    "starlette": "starlette_ceiling",
}
PUT_PATH = "/api/organizations/{org}/contact-protection-settings"
# BACKEND=postgresql (bench/pg_mode.py): orgsettings over SQLite, over PostgreSQL, and as two
# instances over one PostgreSQL database; the peers only when BENCH_TARGETS names them.
PG_LABELS = {
    "orgsettings": "orgsettings sqlite",
    "postgresql": "orgsettings postgresql",
    "postgresql-x2": "orgsettings postgresql x2",
}
# How many `orgsettings serve` processes each target runs (all over one database).
INSTANCES = {"postgresql-x2": 2}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint driven: label, method, path, wrk Lua script, credential, sample body.

    ``cred`` is "v1" (the API key), "api" (the dashboard token) or "random" (a key drawn at
    random per request from the target's keys file). An endpoint with ``only`` runs on those
    targets alone, and one with ``after`` runs right after that endpoint's run on each of them.
    """

    label: str
    method: str
    path: str
    script: str | None
    cred: str
    body: dict[str, Any] | None
    only: tuple[str, ...] | None = None
    after: str | None = None
    #: The first arguments of ``script`` (``inbound.lua``'s mode); see Target.script_args.
    args: tuple[str, ...] = ()


ENDPOINTS = [
    Endpoint("GET /v1/organization", "GET", "/v1/organization", None, "v1", None),
    Endpoint(
        "PATCH /v1/organization",
        "PATCH",
        "/v1/organization",
        "patch.lua",
        "v1",
        {"message_retention_days": 31},
    ),
    Endpoint(
        "PUT /api/.../contact-protection-settings",
        "PUT",
        PUT_PATH,
        "put.lua",
        "api",
        {"contactProtectionPeriod": 1},
    ),
]
# Random-key GETs: a random one of 200,000 keys over 100,000 organizations, on orgsettings
# only, each run right after its single-key GET so the two are compared seconds apart.
RANDOM_GET = Endpoint(
    "GET /v1/organization (random key)",
    "GET",
    "/v1/organization",
    "random_key.lua",
    "random",
    None,
    only=("orgsettings",),
    after="GET /v1/organization",
)
RANDOM_ORGS = 100_000
KEYS_PER_ORG = 2
# Inbound messages (issue 18), orgsettings only, each run right after the endpoint it is
# compared with, on the same server: a STOP from a new number (a write: ledger entry, audit
# event, remembered answer) after PATCH, a non-keyword message (read-only) after GET.
# ``lua/inbound.lua`` sends a new message id on every request; the bodies here are the
# preflight's (its STOP number, +1 415 555 0123, is outside the script's +1 AAA 2XX XXXX).
INBOUND_SCRIPT = "inbound.lua"
INBOUND_TO = "+14155550100"
INBOUND_STOP = Endpoint(
    "POST /v1/inbound_messages (STOP, new number)",
    "POST",
    "/v1/inbound_messages",
    INBOUND_SCRIPT,
    "v1",
    {"id": "bench-preflight-stop", "from": "+14155550123", "to": INBOUND_TO, "body": "STOP"},
    only=("orgsettings",),
    after="PATCH /v1/organization",
    args=("stop",),
)
INBOUND_CHAT = Endpoint(
    "POST /v1/inbound_messages (not a keyword)",
    "POST",
    "/v1/inbound_messages",
    INBOUND_SCRIPT,
    "v1",
    {
        "id": "bench-preflight-chat",
        "from": "+14155550123",
        "to": INBOUND_TO,
        "body": "See you at 5",
    },
    only=("orgsettings",),
    after="GET /v1/organization",
    args=("chat",),
)
INBOUND = [INBOUND_STOP, INBOUND_CHAT]
# The API key's scopes: messaging for the inbound messages.
KEY_SCOPES = ("org:read", "org:admin:write", "audit:read", "messaging")


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
    keys_file: Path | None = None
    seeding: dict[str, Any] | None = None
    # The SQLite database file (None for PostgreSQL and the peers).
    db_path: Path | None = None


@dataclass
class Target:
    """A started target: its server and the credentials its endpoints need."""

    name: str
    setup: Setup
    server: Server
    startup_s: float
    preflight: dict[str, int] = field(default_factory=dict)
    # More instances of the same service over the same database (postgresql-x2): wrk drives
    # every instance at once, the connections split between them.
    others: list[Server] = field(default_factory=list)
    # inbound.lua's STOP runs: the index of the next number no run has used, and how many
    # STOP requests wrk has completed (warm-ups included) with how many in flight at most.
    next_number: int = 0
    stop_sent: dict[str, int] = field(default_factory=lambda: {"completed": 0, "unsure": 0})

    @property
    def servers(self) -> list[Server]:
        """Every instance of this target."""
        return [self.server, *self.others]

    def url(self, endpoint: Endpoint) -> str:
        """The full URL of ``endpoint`` on this target (its first instance)."""
        return self.server.base + endpoint.path.format(org=self.setup.org_id)

    def urls(self, endpoint: Endpoint) -> list[str]:
        """The full URL of ``endpoint`` on each instance of this target."""
        return [s.base + endpoint.path.format(org=self.setup.org_id) for s in self.servers]

    def auth(self, endpoint: Endpoint) -> str:
        """The Authorization header value ``endpoint`` needs on this target.

        For "random" it is the first key of the keys file (what the preflight sends); under wrk,
        ``lua/random_key.lua`` replaces it on every request.
        """
        if endpoint.cred == "random":
            with self._keys_file().open() as keys:
                return f"Bearer {keys.readline().strip()}"
        return self.setup.v1_auth if endpoint.cred == "v1" else self.setup.api_auth

    def script_args(self, endpoint: Endpoint) -> list[str]:
        """Arguments for one wrk run of ``endpoint``'s Lua script: the keys file for "random";
        for ``inbound.lua`` its mode, a tag unique to this run (message ids "bench-TAG-N") and
        the index of the first number no earlier run used; else none."""
        if endpoint.cred == "random":
            return [str(self._keys_file())]
        if endpoint.script == INBOUND_SCRIPT:
            return [*endpoint.args, secrets.token_hex(4), str(self.next_number)]
        return list(endpoint.args)

    def ran(self, endpoint: Endpoint, requests: int, socket_errors: int, connections: int) -> None:
        """After a wrk run of ``endpoint``: move past every number it may have used. wrk
        counts completed requests; up to one more per connection (and one per socket error)
        may have been sent, so the next run starts beyond those too."""
        if endpoint.script == INBOUND_SCRIPT and endpoint.args[:1] == ("stop",):
            self.next_number += requests + socket_errors + connections
            self.stop_sent["completed"] += requests
            self.stop_sent["unsure"] += socket_errors + connections

    def _keys_file(self) -> Path:
        if self.setup.keys_file is None:
            raise ValueError(f"{self.name} was not bulk-seeded: it has no random keys")
        return self.setup.keys_file


def orgsettings_setup(tmp: Path, random_orgs: int = 0, db: str | None = None) -> Setup:
    """orgsettings as production runs it (one worker, request log on) with an org, key, token.

    ``db`` is a postgresql:// URL (an empty database) or, by default, ``<tmp>/bench.db``. With
    ``random_orgs`` (SQLite only), the database then gets that many more organizations with two
    keys each, copied from the bench organization and its key by ``bulk_seed`` (direct SQL, one
    transaction), and their secrets go to ``<tmp>/keys.txt``.
    """
    if db is not None and random_orgs > 0:
        raise ValueError("bulk seeding writes SQLite only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    env["ORGSETTINGS_JWT_SECRET"] = secrets.token_urlsafe(48)
    served = {"ORGSETTINGS_JWT_SECRET": env["ORGSETTINGS_JWT_SECRET"]}
    if db is not None:
        # orgsettings keeps its state (generated secrets, demo ids) in ./var for PostgreSQL:
        # keep it in the throwaway directory instead.
        env["ORGSETTINGS_STATE_DIR"] = served["ORGSETTINGS_STATE_DIR"] = str(tmp)
    cli = [str(BIN / "orgsettings"), "--db", db or str(tmp / "bench.db")]

    def call(*args: str) -> dict[str, Any]:
        out = subprocess.run(
            [*cli, *args, "--json"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout)

    call("init")
    org_id = call("org", "create", "--name", "Bench")["id"]
    key = call("key", "create", "--org", org_id, *(a for s in KEY_SCOPES for a in ("--scope", s)))
    token = call(
        "token", "create", "--org", org_id, "--role", "ADMIN", "--sub", "bench", "--ttl", "86400"
    )
    keys_file, seeding = None, None
    if random_orgs > 0:
        keys_file = tmp / "keys.txt"
        seeding = bulk_seed.bulk_seed(
            tmp / "bench.db",
            template_org_id=org_id,
            template_key=key["key"],
            keys_file=keys_file,
            orgs=random_orgs,
            keys_per_org=KEYS_PER_ORG,
        )
    return Setup(
        cmd=[*cli, "serve", "--port", "{port}"],
        env=served,
        ready_path="/readyz",
        org_id=org_id,
        v1_auth=f"Bearer {key['key']}",
        api_auth=f"Bearer {token['token']}",
        keys_file=keys_file,
        seeding=seeding,
        db_path=None if db is not None else tmp / "bench.db",
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


def make_server(
    name: str, tmp: Path, cpu: int | None, random_orgs: int = 0
) -> tuple[Setup, Server]:
    """Seed ``name`` in ``tmp`` (orgsettings with ``random_orgs`` more organizations) and build
    (not start) its server on a free port."""
    setup, servers = make_servers(name, tmp, [cpu], random_orgs)
    return setup, servers[0]


def make_servers(
    name: str, tmp: Path, cpus: list[int | None], random_orgs: int = 0, db: str | None = None
) -> tuple[Setup, list[Server]]:
    """Seed ``name`` once (orgsettings over ``db`` if given, else SQLite in ``tmp``, with
    ``random_orgs`` more organizations) and build (not start) one server per entry of ``cpus``
    (pinned to it), each on its own free port, all over the same database."""
    if name in ("orgsettings", *INSTANCES, *PG_LABELS):
        setup = orgsettings_setup(tmp, random_orgs, db)
    else:
        setup = peer_setup(name, tmp)
    servers: list[Server] = []
    for index, cpu in enumerate(cpus):
        port = free_port()
        while any(server.port == port for server in servers):
            port = free_port()
        servers.append(
            Server(
                [part.replace("{port}", str(port)) for part in setup.cmd],
                port=port,
                ready_path=setup.ready_path,
                ready_headers=setup.ready_headers,
                env=setup.env,
                log_path=tmp / ("server.log" if index == 0 else f"server-{index + 1}.log"),
                cpu=cpu,
                cwd=ROOT,
            )
        )
    return setup, servers


def preflight(target: Target, endpoint: Endpoint) -> tuple[int, str]:
    """One request by hand before wrk, so a misconfigured target shows its error body."""
    body = endpoint.body
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": target.auth(endpoint), "Content-Type": "application/json"}
    request = urllib.request.Request(
        target.url(endpoint), data=data, method=endpoint.method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")[:300]


def inbound_check(target: Target) -> dict[str, Any] | None:
    """After the runs: did every STOP write a ledger entry? The bench organization's entries
    (read from its SQLite file) against the STOP requests wrk completed, the preflight's one
    included; up to ``unsure`` more may have reached the server as wrk stopped. None when the
    target has no SQLite file or sent no STOP."""
    if target.setup.db_path is None or target.stop_sent["completed"] == 0:
        return None
    import sqlite3

    uri = f"file:{target.setup.db_path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        entries = conn.execute(
            "SELECT count(*) FROM opt_outs WHERE organization_id = ?", (target.setup.org_id,)
        ).fetchone()[0]
    completed = target.stop_sent["completed"] + 1
    unsure = target.stop_sent["unsure"]
    return {
        "ledger_entries": entries,
        "stop_requests_completed": completed,
        "stop_requests_maybe_sent": unsure,
        "every_stop_wrote": completed <= entries <= completed + unsure,
    }
