"""Schemathesis contract runs, against a local throwaway server or any deployment.

    python tests/contract.py --local [--postgresql]
        start `orgsettings serve` on a free port over a temporary database, create an
        organization, a key with every scope and dashboard tokens, then run every pass below.
        With --postgresql the database is a new one in the PostgreSQL server at
        ORGSETTINGS_TEST_POSTGRES (tools/postgres_cluster.py starts a throwaway one).
    python tests/contract.py --url URL --token TOKEN --spec openapi/v1.yaml [--org-id ID]
        run one pass against a deployment (a client team's staging, say).

Every pass uses `--checks all` and all four phases. Nothing is excluded. One check,
positive_data_acceptance, accepts a few more statuses on a few operations only, for rules
JSON Schema cannot carry (see EXTRA_STATUSES); everywhere else it accepts BASE_STATUSES.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import BIN, ROOT, cli, create_database, full_key, start_server

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "40"))
#: Calls per stateful scenario (Schemathesis' default is 6). The ledger's links chain five deep
#: (list -> entry -> DELETE -> PUT again -> read it back); six-call scenarios that also start with
#: unrelated roots rarely got that far.
STATEFUL_MAX_STEPS = int(os.environ.get("CONTRACT_STATEFUL_MAX_STEPS", "20"))
#: Seconds the v1 pass may take (`--max-time`): fuzzing and stateful testing repeat until they
#: are spent. A stateful suite ends early, at a random point, when steps Hypothesis replays meet
#: different answers from the live server (FlakyStrategyDefinition: the ledger and the remembered
#: inbound ids change as the run goes), so one suite covered from 1 to 17 of the v1 links from
#: one run to the next; suites repeated for 60 s covered 16 or 17 of the 17 links in ten runs.
V1_MAX_TIME = int(os.environ.get("CONTRACT_V1_MAX_TIME", "60"))
PHASES = "examples,coverage,fuzzing,stateful"

#: What schema-valid data may get on every operation: Schemathesis' default for
#: positive_data_acceptance less 3xx (nothing here redirects) and 5xx (never acceptable).
BASE_STATUSES = ["2xx", "401", "403", "404", "409", "429"]

#: The statuses schema-valid data may also get on one operation (by operationId), and why:
#: each is a rule JSON Schema cannot carry, checked by the handler after schema validation.
EXTRA_STATUSES = {
    "v1": {
        "handlers.v1.organization.patch_organization": (
            # 412: the fuzzer invents If-Match values, valid strings but stale ETags.
            # 422: cross-field and state rules: mms_retention_days <= message_retention_days,
            # quiet_hours start != end, RESELLER_NOT_ELIGIBLE, RESELLER_HAS_BRANDS,
            # ATTESTATION_REQUIRED.
            ["412", "422"]
        ),
        "handlers.v1.audit_events.list_audit_events": (
            # 422: a cursor of the right shape that this API did not return (a forged one).
            ["422"]
        ),
        "handlers.v1.opt_outs.list_opt_outs": (
            # 422: a forged cursor, as for audit events.
            ["422"]
        ),
        # 422: a number that matches the E.164 pattern but that phonenumbers finds impossible
        # for its country calling code, or not in canonical form (+4402071234567).
        **{
            f"handlers.v1.{operation}": ["422"]
            for operation in (
                "opt_outs.get_opt_out",
                "opt_outs.put_opt_out",
                "opt_outs.delete_opt_out",
                "inbound_messages.receive",
            )
        },
        "handlers.v1.send_decisions.decide": (
            # 422: a number that matches the E.164 pattern but is not a possible number (or not
            # canonical); a time_zone of the right shape that tzdata does not know; an `at`
            # outside 1900-01-01..9999-12-01.
            ["422"]
        ),
        "handlers.v1.missed_calls.receive": (
            # 422: `from` possible and canonical only per phonenumbers; `at` out of range.
            ["422"]
        ),
    },
    "dashboard": {
        "handlers.dashboard.missed_call.put_missed_call_message": (
            # 400: an unknown {{placeholder}} in missedCallMessage; turning the auto-message on
            # while the resulting message is null.
            ["400"]
        ),
    },
}


def toml_list(items: list[str]) -> str:
    """A TOML array of strings."""
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def config_file(kind: str, org_id: str | None) -> Path:
    """A schemathesis.toml for one pass: accepted statuses, and the org to steer paths to."""
    lines = [
        f"[phases.stateful]\nmax-steps = {STATEFUL_MAX_STEPS}\n",
        f"[checks.positive_data_acceptance]\nexpected-statuses = {toml_list(BASE_STATUSES)}\n",
        # A wrong token would otherwise pass: every request is a documented 401.
        '[warnings]\nfail-on = ["missing_auth"]\n',
    ]
    if org_id:
        lines.append(f'[parameters]\n"path.organizationId" = "{org_id}"\n')
    for operation_id, extra in EXTRA_STATUSES[kind].items():
        lines.append(
            f'[[operations]]\ninclude-operation-id = "{operation_id}"\n'
            "[operations.checks.positive_data_acceptance]\n"
            f"expected-statuses = {toml_list(BASE_STATUSES + extra)}\n"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write("\n".join(lines))
    return Path(handle.name)


def run_pass(spec: str, url: str, token: str, kind: str, org_id: str | None = None) -> int:
    """One `schemathesis run`; returns its exit code. The v1 pass runs for V1_MAX_TIME."""
    config = config_file(kind, org_id)
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        spec,
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        os.environ.get("CONTRACT_SEED", "20261123"),
        "--request-timeout",
        "10",
        "--workers",
        "1",
    ]
    if kind == "v1":
        command += ["--max-time", str(V1_MAX_TIME)]
    print(f"\n=== schemathesis {kind}: {spec} against {url}", flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, timeout=900).returncode
    finally:
        config.unlink(missing_ok=True)


def postgresql_database() -> str:
    """A new, empty database in the server at ORGSETTINGS_TEST_POSTGRES; its URL."""
    server = os.environ.get("ORGSETTINGS_TEST_POSTGRES")
    if not server:
        sys.exit("--postgresql needs ORGSETTINGS_TEST_POSTGRES (see tools/postgres_cluster.py)")
    return create_database(server, f"contract_{os.getpid()}")


def run_local(postgresql: bool = False) -> int:
    """Every pass against a fresh local server (over SQLite, or PostgreSQL)."""
    with tempfile.TemporaryDirectory(prefix="orgsettings-contract-") as tmp:
        db: str | Path = postgresql_database() if postgresql else Path(tmp) / "contract.db"
        env = {
            "ORGSETTINGS_STATE_DIR": tmp,
            "ORGSETTINGS_JWT_SECRET": "contract-secret-" + "x" * 32,
            # Schemathesis sends hundreds of requests without (or with a broken) credential on
            # purpose; with the failed-authentication limit on, every later request from this
            # address would be a 429 and the rest of the run would test nothing. That limit
            # has its own tests (tests/test_rate_limits.py).
            "ORGSETTINGS_AUTH_FAILURES_PER_MINUTE": "0",
        }
        cli(db, "init", env=env)
        org = cli(db, "org", "create", "--name", "Contract Org", env=env)["id"]
        key = full_key(db, org, env=env)["key"]
        admin = cli(
            db, "token", "create", "--org", org, "--role", "ADMIN", "--sub", "st-admin", env=env
        )["token"]
        superadmin = cli(
            db, "token", "create", "--role", "SUPERADMIN", "--sub", "st-super", env=env
        )["token"]
        server = start_server(db, env=env, log_path=Path(tmp) / "server.log")
        try:
            codes = [
                run_pass("openapi/v1.yaml", f"{server.base_url}/v1", key, "v1"),
                run_pass(
                    "openapi/dashboard.yaml", f"{server.base_url}/api", admin, "dashboard", org
                ),
                run_pass(
                    "openapi/dashboard.yaml", f"{server.base_url}/api", superadmin, "dashboard", org
                ),
            ]
        finally:
            server.stop()
        if any("Traceback" in line for line in server.log().splitlines()):
            print("the server logged a traceback during the contract run:\n" + server.log()[-4000:])
            return 1
        return max(codes)


def main() -> int:
    """Parse arguments and run the passes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--postgresql", action="store_true", help="with --local")
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--spec", default="openapi/v1.yaml")
    parser.add_argument("--org-id")
    args = parser.parse_args()
    if args.local:
        return run_local(args.postgresql)
    if not (args.url and args.token):
        parser.error("--url and --token are required without --local")
    kind = "dashboard" if "dashboard" in args.spec else "v1"
    return run_pass(args.spec, args.url, args.token, kind, args.org_id)


if __name__ == "__main__":
    sys.exit(main())
