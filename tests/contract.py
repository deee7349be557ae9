"""Schemathesis contract runs, against a local throwaway server or any deployment.

    python tests/contract.py --local
        start `orgsettings serve` on a free port over a temporary database, create an
        organization, a key with every scope and dashboard tokens, then run every pass below.
    python tests/contract.py --url URL --token TOKEN --spec openapi/v1.yaml [--org-id ID]
        run one pass against a deployment (a client team's staging, say).

Every pass uses `--checks all` and all four phases. Nothing is excluded; two checks have
their accepted statuses widened, for reasons JSON Schema cannot carry (see STATUS_NOTES).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import BIN, ROOT, cli, full_key, start_server

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "40"))
PHASES = "examples,coverage,fuzzing,stateful"

#: Why positive (schema-valid) data may still be refused, per spec.
STATUS_NOTES = {
    "v1": (
        # 412: the fuzzer invents If-Match values, which are valid strings but stale ETags.
        # 422: rules JSON Schema cannot express: mms_retention_days <= message_retention_days,
        # quiet_hours start != end, RESELLER_* and ATTESTATION_REQUIRED state rules.
        ["2xx", "401", "403", "404", "409", "412", "422", "429"]
    ),
    "dashboard": (
        # 400: the missed-call rules (unknown {{placeholder}}, enabling with no message, a body
        # with neither field) are checked by the handler, after schema validation.
        ["2xx", "400", "401", "403", "404", "409", "429"]
    ),
}


def config_file(kind: str, org_id: str | None) -> Path:
    """A schemathesis.toml for one pass: accepted statuses, and the org to steer paths to."""
    statuses = ", ".join(f'"{s}"' for s in STATUS_NOTES[kind])
    lines = [
        f"[checks.positive_data_acceptance]\nexpected-statuses = [{statuses}]\n",
        # A wrong token would otherwise pass: every request is a documented 401.
        '[warnings]\nfail-on = ["missing_auth"]\n',
    ]
    if org_id:
        lines.append(f'[parameters]\n"path.organizationId" = "{org_id}"\n')
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write("\n".join(lines))
    return Path(handle.name)


def run_pass(spec: str, url: str, token: str, kind: str, org_id: str | None = None) -> int:
    """One `schemathesis run`; returns its exit code."""
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
    print(f"\n=== schemathesis {kind}: {spec} against {url}", flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, timeout=900).returncode
    finally:
        config.unlink(missing_ok=True)


def run_local() -> int:
    """Every pass against a fresh local server."""
    with tempfile.TemporaryDirectory(prefix="orgsettings-contract-") as tmp:
        db = Path(tmp) / "contract.db"
        env = {"ORGSETTINGS_JWT_SECRET": "contract-secret-" + "x" * 32}
        cli(db, "init", env=env)
        org = cli(db, "org", "create", "--name", "Contract Org", env=env)["id"]
        key = full_key(db, org, env=env)["key"]
        admin = cli(
            db, "token", "create", "--org", org, "--role", "ADMIN", "--sub", "st-admin", env=env
        )["token"]
        superadmin = cli(
            db, "token", "create", "--role", "SUPERADMIN", "--sub", "st-super", env=env
        )["token"]
        server = start_server(db, env=env)
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
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--spec", default="openapi/v1.yaml")
    parser.add_argument("--org-id")
    args = parser.parse_args()
    if args.local:
        return run_local()
    if not (args.url and args.token):
        parser.error("--url and --token are required without --local")
    kind = "dashboard" if "dashboard" in args.spec else "v1"
    return run_pass(args.spec, args.url, args.token, kind, args.org_id)


if __name__ == "__main__":
    sys.exit(main())
