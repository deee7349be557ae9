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
# Send decisions and missed calls (issue 19), orgsettings only, like the inbound messages.
# ``seed_messaging`` sets the bench organization up for them once it is serving (quiet hours,
# five opt-outs, the missed-call auto-message), before the preflights.
#
# POST /v1/send_decisions: one fixed body, 100 recipients over eight area codes and their
# zones (208 and 907 have two, 709 has two, one at a 30-minute offset) and one toll-free
# number (42 zones), at 23:00 in New York, with quiet hours 21:00-08:00 in queue mode: a mix of
# hold, send, block (opted out) and the toll-free number's answer.
DECISIONS_AT = "2026-12-03T04:00:00Z"
DECISION_AREAS = {212: 13, 310: 13, 208: 13, 709: 12, 312: 12, 602: 12, 808: 12, 907: 12}
DECISION_TOLL_FREE = "+18002000000"
QUIET_HOURS = {"enabled": True, "start": "21:00", "end": "08:00", "mode": "queue"}


def decision_numbers() -> list[str]:
    """The 100 recipients: +1 AAA (200+j) 000j for the j-th number of each area code, taken
    round-robin over DECISION_AREAS (so zones alternate), then the toll-free number."""
    columns = [
        [f"+1{area}{200 + j}{j:04d}" for j in range(count)]
        for area, count in DECISION_AREAS.items()
    ]
    rows = max(len(column) for column in columns)
    numbers = [column[j] for j in range(rows) for column in columns if j < len(column)]
    return [*numbers, DECISION_TOLL_FREE]


DECISION_NUMBERS = decision_numbers()
# Opted out before the run (PUT /v1/opt_outs/{number}): the first number of five area codes.
DECISION_OPTED_OUT = tuple(DECISION_NUMBERS[i] for i in (0, 1, 2, 4, 5))
SEND_DECISIONS = Endpoint(
    "POST /v1/send_decisions (100 recipients)",
    "POST",
    "/v1/send_decisions",
    "body.lua",
    "v1",
    {"at": DECISIONS_AT, "recipients": [{"phone_number": n} for n in DECISION_NUMBERS]},
    only=("orgsettings",),
    after="GET /v1/organization",
)
# POST /v1/missed_calls: a new call id and a new caller on every request (lua/missed_call.lua:
# +1 AAA 3XX XXXX, Pacific area codes, a range inbound.lua's STOPs never reach), at 11:00
# Pacific, outside quiet hours, so every call is answered `send` and writes (remembered answer
# and contact-protection row). The preflight's caller, +1 415 555 0124, is outside that range
# (and is not the inbound preflight's opted-out +1 415 555 0123).
MISSED_SCRIPT = "missed_call.lua"
MISSED_AT = "2026-12-03T19:00:00Z"
MISSED_MESSAGE = {
    "missedCallMessage": "Hi {{contactName}}, sorry we missed you.",
    "missedCallAutoMessageEnabled": True,
}
MISSED_CALLS = Endpoint(
    "POST /v1/missed_calls (new caller)",
    "POST",
    "/v1/missed_calls",
    MISSED_SCRIPT,
    "v1",
    {
        "id": "bench-preflight-missed",
        "from": "+14155550124",
        "contact_name": "Dana",
        "at": MISSED_AT,
    },
    only=("orgsettings",),
    after="PATCH /v1/organization",
)
MESSAGING = [SEND_DECISIONS, MISSED_CALLS]
# The API key's scopes: messaging for the inbound messages, send decisions and missed calls;
# opt_outs:write for seeding the opt-outs the send decisions find.
KEY_SCOPES = ("org:read", "org:admin:write", "audit:read", "messaging", "opt_outs:write")


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
    # The same for missed_call.lua's callers (a range of their own).
    next_caller: int = 0
    missed_sent: dict[str, int] = field(default_factory=lambda: {"completed": 0, "unsure": 0})
    # messaging_check's answer, made by hand before the rounds (None before it ran).
    messaging: dict[str, Any] | None = None

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
        the index of the first number no earlier run used; for ``missed_call.lua`` a tag, the
        first caller no earlier run used and the calls' ``at``; for ``body.lua`` the body (the
        preflight's, compact JSON); else none."""
        if endpoint.cred == "random":
            return [str(self._keys_file())]
        if endpoint.script == INBOUND_SCRIPT:
            return [*endpoint.args, secrets.token_hex(4), str(self.next_number)]
        if endpoint.script == MISSED_SCRIPT:
            return [secrets.token_hex(4), str(self.next_caller), MISSED_AT]
        if endpoint.script == "body.lua":
            return [json.dumps(endpoint.body, separators=(",", ":"))]
        return list(endpoint.args)

    def ran(self, endpoint: Endpoint, requests: int, socket_errors: int, connections: int) -> None:
        """After a wrk run of ``endpoint``: move past every number it may have used. wrk
        counts completed requests; up to one more per connection (and one per socket error)
        may have been sent, so the next run starts beyond those too."""
        if endpoint.script == INBOUND_SCRIPT and endpoint.args[:1] == ("stop",):
            self.next_number += requests + socket_errors + connections
            self.stop_sent["completed"] += requests
            self.stop_sent["unsure"] += socket_errors + connections
        elif endpoint.script == MISSED_SCRIPT:
            self.next_caller += requests + socket_errors + connections
            self.missed_sent["completed"] += requests
            self.missed_sent["unsure"] += socket_errors + connections

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
    (read from its SQLite file; the opt-outs ``seed_messaging`` added are not counted) against
    the STOP requests wrk completed, the preflight's one included; up to ``unsure`` more may
    have reached the server as wrk stopped. None when the target has no SQLite file or sent no
    STOP."""
    if target.setup.db_path is None or target.stop_sent["completed"] == 0:
        return None
    import sqlite3

    uri = f"file:{target.setup.db_path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        seeded = ", ".join("?" for _ in DECISION_OPTED_OUT)
        entries = conn.execute(
            "SELECT count(*) FROM opt_outs WHERE organization_id = ?"
            f" AND phone_number NOT IN ({seeded})",
            (target.setup.org_id, *DECISION_OPTED_OUT),
        ).fetchone()[0]
    completed = target.stop_sent["completed"] + 1
    unsure = target.stop_sent["unsure"]
    return {
        "ledger_entries": entries,
        "stop_requests_completed": completed,
        "stop_requests_maybe_sent": unsure,
        "every_stop_wrote": completed <= entries <= completed + unsure,
    }


def _request(
    target: Target, method: str, path: str, auth: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One request to ``target``'s first instance: the status and the parsed JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        target.server.base + path,
        data=data,
        method=method,
        headers={"Authorization": auth, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw = int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:300]


def seed_messaging(target: Target) -> None:
    """Set the bench organization up for the send decisions and missed calls, through the API
    as a customer would: quiet hours 21:00-08:00 in queue mode (PATCH /v1/organization), five
    of the recipients opted out (PUT /v1/opt_outs/{number}, the key's ``opt_outs:write``) and
    the missed-call auto-message on (the dashboard's PUT, with the ADMIN token). Contact
    protection stays at its default, 0 (no limit). Raises on any answer but 2xx, or when a
    recipient is not a possible canonical E.164 number."""
    from handlers.rules import phone_numbers

    refused = {n: p for n in DECISION_NUMBERS if (p := phone_numbers.problem(n)) is not None}
    if refused:
        raise ValueError(f"bench send-decision numbers refused: {refused}")
    v1, api = target.setup.v1_auth, target.setup.api_auth
    calls = [
        ("PATCH", "/v1/organization", v1, {"quiet_hours": QUIET_HOURS}),
        *(("PUT", "/v1/opt_outs/" + n.replace("+", "%2B"), v1, None) for n in DECISION_OPTED_OUT),
        (
            "PUT",
            f"/api/organizations/{target.setup.org_id}/missed-call-message",
            api,
            MISSED_MESSAGE,
        ),
    ]
    for method, path, auth, body in calls:
        status, answer = _request(target, method, path, auth, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"seeding {method} {path}: {status} {answer}")


def messaging_check(target: Target) -> dict[str, Any]:
    """What the two endpoints answer once seeded: the send decisions' counts by decision and
    reason, and one missed call's action (expected: send). Made by hand before the rounds."""
    auth = target.setup.v1_auth
    status, answer = _request(target, "POST", SEND_DECISIONS.path, auth, SEND_DECISIONS.body)
    counts: dict[str, int] = {}
    if status == 200:
        for decision in answer["data"]:
            key = "/".join([decision["decision"], *decision["reasons"]])
            counts[key] = counts.get(key, 0) + 1
    call = {**MISSED_CALLS.body, "id": "bench-check-missed", "from": "+14155550125"}
    missed_status, missed = _request(target, "POST", MISSED_CALLS.path, auth, call)
    return {
        "send_decisions_status": status,
        "send_decisions": dict(sorted(counts.items())),
        "missed_call_status": missed_status,
        "missed_call_action": missed["data"]["action"] if missed_status == 200 else None,
    }


def missed_check(target: Target) -> dict[str, Any] | None:
    """After the runs: was every missed call a write? The bench organization's
    contact-protection rows (one per caller answered send or hold) against the calls wrk
    completed, plus the preflight's and messaging_check's; up to ``unsure`` more may have
    reached the server as wrk stopped. None without a SQLite file or a missed-call run."""
    if target.setup.db_path is None or target.missed_sent["completed"] == 0:
        return None
    import sqlite3

    uri = f"file:{target.setup.db_path}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM missed_call_contacts WHERE organization_id = ?",
            (target.setup.org_id,),
        ).fetchone()[0]
    completed = target.missed_sent["completed"] + 2
    unsure = target.missed_sent["unsure"]
    return {
        "contact_rows": rows,
        "calls_completed": completed,
        "calls_maybe_sent": unsure,
        "every_call_wrote": completed <= rows <= completed + unsure,
    }
