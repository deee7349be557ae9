"""The operator CLI, run in-process (and once as the installed console script), over either
backend (see conftest); the tests about the SQLite file itself are marked sqlite_only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from conftest import JWT_SECRET, POSTGRESQL, bearer, new_database, outside, sync_store
from handlers.app import create_app
from handlers.cli.main import main
from handlers.config import Config
from storage.postgresql import migrations as postgresql_migrations
from storage.sqlite import migrations as sqlite_migrations

latest_version = (postgresql_migrations if POSTGRESQL else sqlite_migrations).latest_version

UNKNOWN_ORG = "0190a1b2-c3d4-7e5f-a7b8-c9d0e1f2a3b4"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORGSETTINGS_* from the outer environment leaks into a test. Over PostgreSQL the
    generated secret and the demo's id file go to the test's directory (ORGSETTINGS_STATE_DIR);
    over SQLite they go beside the database file, by default."""
    for name in list(os.environ):
        if name.startswith("ORGSETTINGS_"):
            monkeypatch.delenv(name)
    if POSTGRESQL:
        monkeypatch.setenv("ORGSETTINGS_STATE_DIR", str(tmp_path / "cli"))


@pytest.fixture
def db(tmp_path: Path) -> Any:
    """This test's database: a file path (SQLite) or a new database's URL (PostgreSQL)."""
    return new_database(tmp_path) if POSTGRESQL else tmp_path / "cli" / "orgsettings.db"


def config_of(db: Any) -> Config:
    """The configuration the CLI builds for ``--db db`` in this test's environment."""
    return Config.from_env(str(db))


@pytest.fixture
def cli(db: Path, capsys: pytest.CaptureFixture[str]):
    """Run ``orgsettings --db DB ARGS... --json``; returns (exit status, the one JSON object)."""

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        status = main(["--db", str(db), *args, "--json"])
        out = capsys.readouterr().out
        return status, json.loads(out)

    return run


@pytest.fixture
def initialized(cli) -> None:
    """The database made with ``init`` (every other command refuses a missing one)."""
    assert cli("init")[0] == 0


@pytest.fixture
def org_id(cli, initialized) -> str:
    """An organization made through the CLI."""
    return cli("org", "create", "--name", "Acme Health")[1]["id"]


@pytest.fixture
def http(db: Path) -> Iterator[TestClient]:
    """A test client of an app over the CLI's database."""
    app = create_app(Config(database=str(db), jwt_secret=JWT_SECRET, log_requests=False))
    with app.test_client() as client:
        yield client


def events(db: Path, org_id: str) -> list[dict[str, Any]]:
    """Every audit event of an org, newest first, read straight from the database."""
    store = sync_store(db)
    try:
        return store.list_events(org_id, limit=100)[0]
    finally:
        store.close()


# -- one JSON object per command ----------------------------------------------------------------


def test_init_creates_the_database(cli, db):
    """init migrates a new database and reports its schema version."""
    status, out = cli("init")
    assert status == 0
    assert out == {"database": str(db), "schema_version": latest_version()}
    if not POSTGRESQL:
        assert db.exists()


def test_init_twice_is_harmless(cli, org_id):
    """Re-running init keeps the data."""
    assert cli("init")[0] == 0
    assert cli("org", "show", org_id)[1]["name"] == "Acme Health"


def test_init_creates_a_private_jwt_secret_when_none_is_set(cli, db):
    """Without ORGSETTINGS_JWT_SECRET, init writes a random secret readable only by its owner."""
    cli("init")
    secret_file = config_of(db).secret_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 32


def test_org_create_takes_the_operator_fields(cli, initialized):
    """org create sets tenant type, plan and throughput tier."""
    status, out = cli(
        "org", "create", "--name", "Jo Doe", "--tenant-type", "personal",
        "--plan", "pro", "--throughput-tier", "3",
    )  # fmt: skip
    assert status == 0
    assert out["id"]
    assert (out["name"], out["tenant_type"], out["plan"], out["throughput_tier"]) == (
        "Jo Doe",
        "personal",
        "pro",
        3,
    )


def test_org_create_records_an_event(cli, db, org_id):
    """The new organization's trail starts with organization.created from the CLI."""
    (event,) = events(db, org_id)
    assert (event["type"], event["surface"], event["actor"]["type"]) == (
        "organization.created",
        "cli",
        "operator",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--name", ""],
        ["--name", "   "],
        ["--name", "x" * 101],
        ["--name", "A", "--tenant-type", "government"],
        ["--name", "A", "--throughput-tier", "0"],
    ],
)
def test_org_create_refuses_bad_values(db, capsys, args):
    """Invalid operator input is a usage error and creates nothing."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(db), "org", "create", *args, "--json"])
    assert exit_info.value.code != 0
    assert "error" in capsys.readouterr().err


def test_org_show_has_the_fields_of_both_views(cli, org_id):
    """org show prints every field, the v1 ones and the dashboard ones."""
    status, out = cli("org", "show", org_id)
    assert status == 0
    assert out["id"] == org_id
    assert {
        "name",
        "billing_email",
        "plan",
        "throughput_tier",
        "tenant_type",
        "message_retention_days",
        "mms_retention_days",
        "is_reseller",
        "quiet_hours",
        "auto_replies",
        "registration_status",
        "contact_protection_period",
        "missed_call_message",
        "missed_call_auto_message_enabled",
        "created_at",
        "updated_at",
        "version",
    } <= set(out)
    assert out["quiet_hours"] == {
        "enabled": False,
        "start": "21:00",
        "end": "08:00",
        "mode": "reject",
    }


def test_key_create_prints_the_key_once(cli, db, org_id):
    """key create prints a fresh am_live_ key, its prefix, scopes and org; only its hash is kept."""
    status, out = cli(
        "key", "create", "--org", org_id, "--scope", "org:read", "--scope", "audit:read"
    )
    assert status == 0
    assert set(out) == {"id", "key", "prefix", "scopes", "organization_id"}
    assert out["key"].startswith("am_live_")
    assert len(out["key"]) - len("am_live_") >= 32
    assert out["key"].startswith(out["prefix"]) and out["prefix"] != out["key"]
    assert sorted(out["scopes"]) == ["audit:read", "org:read"]
    assert out["organization_id"] == org_id
    if POSTGRESQL:
        with outside(db) as conn:
            stored = conn.execute("SELECT string_agg(t::text, ' ') FROM api_keys t").fetchone()
        assert out["prefix"] in stored[0] and out["key"] not in stored[0]
    else:
        assert out["key"].encode() not in db.read_bytes()


def test_created_key_works_against_the_api(cli, http, org_id):
    """The printed key authenticates as its org with the scopes it was given."""
    key = cli("key", "create", "--org", org_id, "--scope", "org:read")[1]["key"]
    response = http.get("/v1/organization", headers=bearer(key))
    assert response.status_code == 200
    assert response.json()["data"]["id"] == org_id
    assert http.get("/v1/audit_events", headers=bearer(key)).status_code == 403


def test_key_create_records_an_event(cli, db, org_id):
    """api_key.created names the key, never its secret."""
    out = cli("key", "create", "--org", org_id, "--scope", "org:read")[1]
    event = events(db, org_id)[0]
    assert event["type"] == "api_key.created"
    assert out["id"] in json.dumps(event)
    assert out["key"] not in json.dumps(event)


def test_revoked_key_stops_working(cli, http, db, org_id):
    """key revoke makes the key 401 at once and records api_key.revoked."""
    out = cli("key", "create", "--org", org_id, "--scope", "org:read")[1]
    status, revoked = cli("key", "revoke", out["id"])
    assert status == 0
    assert revoked["id"] == out["id"] and revoked["revoked_at"]
    assert http.get("/v1/organization", headers=bearer(out["key"])).status_code == 401
    assert events(db, org_id)[0]["type"] == "api_key.revoked"


@pytest.mark.parametrize("role", ["USER", "ADMIN"])
def test_token_create_signs_with_the_configured_secret(cli, monkeypatch, org_id, role):
    """With ORGSETTINGS_JWT_SECRET set, tokens are HS256 with it and carry the claims asked for."""
    monkeypatch.setenv("ORGSETTINGS_JWT_SECRET", JWT_SECRET)
    status, out = cli("token", "create", "--org", org_id, "--role", role, "--sub", "user-1")
    assert status == 0
    assert set(out) == {"token", "expires_at"}
    claims = jwt.decode(out["token"], JWT_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"], claims["organizationId"]) == ("user-1", role, org_id)


def test_token_create_uses_the_generated_secret_when_none_is_set(cli, db, org_id):
    """Without ORGSETTINGS_JWT_SECRET, tokens are signed with the 0600 file next to the db."""
    cli("init")
    out = cli("token", "create", "--org", org_id, "--role", "ADMIN", "--sub", "u", "--ttl", "60")[1]
    secret = config_of(db).secret_file.read_text().strip()
    claims = jwt.decode(out["token"], secret, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60


def test_superadmin_token_needs_no_org(cli, initialized, monkeypatch):
    """A SUPERADMIN token has no organizationId."""
    monkeypatch.setenv("ORGSETTINGS_JWT_SECRET", JWT_SECRET)
    out = cli("token", "create", "--role", "SUPERADMIN", "--sub", "root")[1]
    claims = jwt.decode(out["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["role"] == "SUPERADMIN" and "organizationId" not in claims


def test_member_token_without_org_is_refused(db, initialized, capsys):
    """USER and ADMIN tokens need --org: one line on stderr, nothing on stdout, exit 2."""
    status = main(["--db", str(db), "token", "create", "--role", "ADMIN", "--sub", "u", "--json"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err == "orgsettings: error: --org is required for USER and ADMIN tokens\n"


def test_brand_create_and_delete_change_registration_status(cli, org_id):
    """Brands drive registration_status; deleting the last one returns it to NONE."""
    status, brand = cli(
        "brand", "create", "--org", org_id, "--status", "ACTIVE", "--campaigns", "2"
    )
    assert status == 0
    shown = cli("org", "show", org_id)[1]["registration_status"]
    assert shown == {"brand": "ACTIVE", "brand_count": 1, "campaign_count": 2}
    assert cli("brand", "delete", brand["id"])[0] == 0
    shown = cli("org", "show", org_id)[1]["registration_status"]
    assert shown == {"brand": "NONE", "brand_count": 0, "campaign_count": 0}


def test_brand_commands_record_events(cli, db, org_id):
    """brand.created then brand.deleted land on the org's trail."""
    brand = cli("brand", "create", "--org", org_id)[1]
    cli("brand", "delete", brand["id"])
    types = [e["type"] for e in events(db, org_id)]
    assert types == ["brand.deleted", "brand.created", "organization.created"]


# -- demo ---------------------------------------------------------------------------------------


def test_demo_prints_keys_tokens_and_curl_lines(cli):
    """demo prints the org, an admin and a read-only key, three tokens and curl lines."""
    status, out = cli("demo")
    assert status == 0
    assert out["organization"]["id"]
    assert set(out["keys"]) == {"admin", "read_only"}
    assert set(out["tokens"]) == {"USER", "ADMIN", "SUPERADMIN"}
    assert out["curl"]
    assert all(line.startswith("curl ") for line in out["curl"].values())
    assert any(out["keys"]["admin"]["key"] in line for line in out["curl"].values())


def test_demo_twice_reuses_the_org_with_fresh_keys(cli):
    """A second demo keeps the same organization and mints new keys."""
    first = cli("demo")[1]
    second = cli("demo")[1]
    assert second["organization"]["id"] == first["organization"]["id"]
    assert second["keys"]["admin"]["key"] != first["keys"]["admin"]["key"]
    assert second["keys"]["read_only"]["key"] != first["keys"]["read_only"]["key"]


def test_demo_finds_its_org_again_after_a_rename(cli, http, db):
    """Renamed through the API (as the printed curl lines do), the demo org is still reused."""
    first = cli("demo")[1]
    key = first["keys"]["admin"]["key"]
    renamed = http.patch(
        "/v1/organization", json={"name": "Demo Organization, Inc."}, headers=bearer(key)
    )
    assert renamed.status_code == 200
    second = cli("demo")[1]
    assert second["organization"]["id"] == first["organization"]["id"]
    assert second["organization"]["name"] == "Demo Organization, Inc."
    assert (config_of(db).demo_org_file).read_text().strip() == second["organization"]["id"]


def test_demo_without_its_id_file_finds_the_org_by_name(cli, db):
    """A database made before the id file existed: the demo org is found by its name."""
    first = cli("demo")[1]
    (config_of(db).demo_org_file).unlink()
    assert cli("demo")[1]["organization"]["id"] == first["organization"]["id"]
    assert (config_of(db).demo_org_file).exists()


def test_demo_id_file_naming_a_missing_org_is_replaced(cli, db):
    """An id file naming no organization (another database's, say) falls back, then is fixed."""
    first = cli("demo")[1]
    id_file = config_of(db).demo_org_file
    id_file.write_text(UNKNOWN_ORG + "\n")
    assert cli("demo")[1]["organization"]["id"] == first["organization"]["id"]
    assert id_file.read_text().strip() == first["organization"]["id"]


@pytest.mark.sqlite_only
def test_demo_orgs_of_two_databases_in_one_directory_are_kept_apart(db, capsys):
    """Each database remembers its own demo organization."""
    other = db.parent / "other.db"
    ids = {}
    for run in range(2):
        for path in (db, other):
            assert main(["--db", str(path), "demo", "--json"]) == 0
            org_id = json.loads(capsys.readouterr().out)["organization"]["id"]
            assert ids.setdefault(path, org_id) == org_id, f"run {run} of {path}"
    assert ids[db] != ids[other]


def test_demo_key_works_against_the_api(cli, http):
    """The admin key demo prints reads and changes the demo org."""
    out = cli("demo")[1]
    key = out["keys"]["admin"]["key"]
    response = http.patch("/v1/organization", json={"name": "Renamed"}, headers=bearer(key))
    assert response.status_code == 200
    assert response.json()["data"]["id"] == out["organization"]["id"]


def test_demo_without_json_prints_curl_lines(db, capsys):
    """The human output has the keys and ready-to-paste curl lines."""
    assert main(["--db", str(db), "demo"]) == 0
    text = capsys.readouterr().out
    assert "am_live_" in text
    assert "curl -sS" in text


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["org", "show", UNKNOWN_ORG], f"organization {UNKNOWN_ORG} not found"),
        (
            ["key", "create", "--org", UNKNOWN_ORG, "--scope", "org:read"],
            f"organization {UNKNOWN_ORG} not found",
        ),
        (["key", "revoke", "key_nope"], "API key key_nope not found"),
        (
            ["token", "create", "--org", UNKNOWN_ORG, "--role", "ADMIN", "--sub", "u"],
            f"organization {UNKNOWN_ORG} not found",
        ),
        (["brand", "create", "--org", UNKNOWN_ORG], f"organization {UNKNOWN_ORG} not found"),
        (["brand", "delete", "brand_nope"], "brand brand_nope not found"),
    ],
)
@pytest.mark.parametrize("as_json", [True, False])
def test_unknown_id_is_one_line_naming_it(cli, db, capsys, args, message, as_json):
    """An id that does not exist: exit 1, stdout empty, stderr one line saying what is missing."""
    cli("init")
    status = main(["--db", str(db), *args, *(["--json"] if as_json else [])])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert captured.err == f"orgsettings: error: {message}\n"


def test_db_option_is_accepted_after_the_command(db, capsys):
    """--db works after the command as well as before it."""
    assert main(["init", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["database"] == str(db)


def test_console_script_is_installed(tmp_path):
    """The orgsettings console script runs and prints one JSON object."""
    script = Path(sys.executable).parent / "orgsettings"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    db = tmp_path / "script.db"
    result = subprocess.run(
        [str(script), "--db", str(db), "init", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = {"database": str(db), "schema_version": sqlite_migrations.latest_version()}
    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["org", "show", "01890a5d-ac96-774b-bcce-b302099a8057"],
        ["org", "create", "--name", "Typo"],
        ["key", "revoke", "key_x"],
        ["audit", "verify"],
        ["serve", "--port", "2212"],
    ],
)
@pytest.mark.sqlite_only
def test_a_missing_database_is_refused_and_nothing_is_created(db, capsys, args):
    """Every command but init and demo: one line naming the path, exit 2, no file made."""
    status = main(["--db", str(db), *args, "--json"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.strip() == (
        f"orgsettings: error: no database at {db}; create it with `orgsettings init`"
    )
    assert not db.parent.exists()


def test_audit_verify_reports_every_chain(cli, org_id):
    """audit verify recomputes every organization's chain and finds it whole."""
    cli("org", "create", "--name", "Second")
    status, out = cli("audit", "verify")
    assert status == 0
    assert out == {"organizations": 2, "events": 2, "broken": None}
    assert cli("audit", "verify", "--org", org_id)[1]["organizations"] == 1


def test_audit_verify_names_the_first_broken_event(cli, db, org_id, capsys):
    """A tampered event: exit 1, the JSON names it, and so does the one line on stderr."""

    cli("brand", "create", "--org", org_id)
    with outside(db) as conn:
        # Past the append-only guard, as someone with full access to the database can.
        if POSTGRESQL:
            conn.execute("SET session_replication_role = replica")
        else:
            conn.execute("DROP TRIGGER audit_events_no_update")
        first = "SELECT id FROM audit_events ORDER BY seq LIMIT 1"
        forged = conn.execute(first).fetchone()[0]
        conn.execute(f"UPDATE audit_events SET request_id = 'forged' WHERE id = '{forged}'")
    status = main(["--db", str(db), "audit", "verify", "--json"])
    captured = capsys.readouterr()
    assert status == 1
    assert json.loads(captured.out)["broken"]["id"] == forged
    assert f"audit chain broken at event {forged}" in captured.err
