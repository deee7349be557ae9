"""Every CLI failure is one clear line on stderr and a non-zero exit; stdout stays empty."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from handlers.cli.main import main

UNKNOWN_ORG = "0190a1b2-c3d4-7e5f-a7b8-c9d0e1f2a3b4"
PYTHON_LITERALS = {"None", "True", "False"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ORGSETTINGS_* from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ORGSETTINGS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """This test's database, initialised."""
    path = tmp_path / "cli" / "orgsettings.db"
    assert main(["--db", str(path), "init", "--json"]) == 0
    return path


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """``orgsettings ARGS...`` in-process: (exit status, stdout, stderr); a usage error too."""

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return call


def assert_one_error_line(status: int, out: str, err: str) -> str:
    """A failure: non-zero exit, nothing on stdout, exactly one line on stderr; returns it."""
    assert status != 0
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    line = err.rstrip("\n")
    assert line.startswith("orgsettings") and ": error: " in line, line
    return line


# -- argument errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["token", "create", "--role", "SUPERADMIN", "--sub", ""], "--sub: must not be empty"),
        (["token", "create", "--role", "SUPERADMIN", "--sub", "  "], "--sub: must not be empty"),
        (
            ["token", "create", "--role", "SUPERADMIN", "--sub", "u", "--ttl", "99999999999999"],
            "--ttl: must be from 1 to 31536000",
        ),
        (
            ["token", "create", "--role", "SUPERADMIN", "--sub", "u", "--ttl", "0"],
            "--ttl: must be from 1 to 31536000",
        ),
        (
            ["token", "create", "--role", "SUPERADMIN", "--sub", "u", "--ttl", "soon"],
            "--ttl: must be a whole number",
        ),
        (
            ["org", "create", "--name", "A", "--throughput-tier", "abc"],
            "--throughput-tier: must be a whole number from 1 to",
        ),
        (
            ["org", "create", "--name", "A", "--throughput-tier", str(2**70)],
            "--throughput-tier: must be from 1 to",
        ),
        (["org", "create", "--name", "A", "--plan", ""], "--plan: must not be empty"),
        (["brand", "create", "--org", "o", "--campaigns", "-1"], "--campaigns: must be from 0"),
        (["serve", "--port", "99999"], "--port: must be from 1 to 65535"),
        (["serve", "--port", "0"], "--port: must be from 1 to 65535"),
        (["serve", "--port", "http"], "--port: must be a whole number from 1 to 65535"),
        (["serve", "--workers", "0"], "--workers: must be from 1 to"),
        (["serve", "--host", "bad host"], "--host: 'bad host' is not a host name or IP address"),
        (["serve", "--host", ""], "--host: '' is not a host name"),
        (["serve", "--host", "::zz"], "--host: '::zz' is not an IPv6 address"),
        (["demo", "--port", "70000"], "--port: must be from 1 to 65535"),
        (["org", "show", ""], "org_id: must not be empty"),
        (["nope"], "invalid choice"),
    ],
)
@pytest.mark.parametrize("as_json", [True, False])
def test_bad_arguments_are_one_line(run, db, args, expected, as_json):
    """Bad arguments: exit 2, one line naming the argument, no internal function names."""
    status, out, err = run("--db", str(db), *args, *(["--json"] if as_json else []))
    line = assert_one_error_line(status, out, err)
    assert status == 2
    assert expected in line
    assert "_positive" not in line and "invalid int value" not in line


# -- the database path -----------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False])
def test_db_that_is_a_directory_is_refused(run, tmp_path, as_json):
    """--db naming a directory: one line, and nothing is created beside it."""
    folder = tmp_path / "folder"
    folder.mkdir()
    status, out, err = run("--db", str(folder), "init", *(["--json"] if as_json else []))
    assert assert_one_error_line(status, out, err) == (
        f"orgsettings: error: --db {folder} is a directory"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


@pytest.mark.parametrize("command", [["init"], ["org", "show", UNKNOWN_ORG], ["demo"], ["serve"]])
def test_db_that_is_not_sqlite_is_refused(run, tmp_path, command):
    """--db naming some other file: one line, and the file is left as it was."""
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n")
    status, out, err = run("--db", str(other), *command, "--json")
    assert assert_one_error_line(status, out, err) == (
        f"orgsettings: error: --db {other} is not an SQLite database"
    )
    assert other.read_text() == "not a database\n"


def test_db_inside_a_file_is_refused(run, tmp_path):
    """A --db whose directory is a file: one line."""
    other = tmp_path / "file"
    other.write_text("x")
    status, out, err = run("--db", str(other / "orgsettings.db"), "init", "--json")
    assert "Not a directory" in assert_one_error_line(status, out, err)


def test_db_from_the_environment_is_checked_too(run, tmp_path, monkeypatch):
    """ORGSETTINGS_DB gets the same check as --db."""
    monkeypatch.setenv("ORGSETTINGS_DB", str(tmp_path))
    status, out, err = run("init")
    assert assert_one_error_line(status, out, err) == (
        f"orgsettings: error: database {tmp_path} is a directory"
    )


def test_an_empty_file_is_a_new_database(run, tmp_path):
    """SQLite takes an empty file as a new database; so does the CLI."""
    empty = tmp_path / "empty.db"
    empty.touch()
    status, out, _ = run("--db", str(empty), "init", "--json")
    assert status == 0 and json.loads(out)["database"] == str(empty)


# -- the environment, tokens, the database at work ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ORGSETTINGS_DB_WAIT_SECONDS", "abc", "ORGSETTINGS_DB_WAIT_SECONDS must be a number"),
        ("ORGSETTINGS_JWT_PUBLIC_KEY", "/nonexistent/key.pem", "cannot read /nonexistent/key.pem"),
    ],
)
def test_bad_environment_is_one_line(run, db, monkeypatch, name, value, expected):
    """A bad ORGSETTINGS_* value is named in one line."""
    monkeypatch.setenv(name, value)
    status, out, err = run("--db", str(db), "org", "show", UNKNOWN_ORG, "--json")
    assert expected in assert_one_error_line(status, out, err)
    assert status == 2


def test_token_create_with_a_public_key_configured_is_one_line(run, db, tmp_path, monkeypatch):
    """token create signs HS256 only; with RS256/ES256 configured it says so in one line."""
    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n")
    monkeypatch.setenv("ORGSETTINGS_JWT_PUBLIC_KEY", str(pem))
    status, out, err = run("--db", str(db), "token", "create", "--role", "SUPERADMIN", "--sub", "u")
    assert "ORGSETTINGS_JWT_PUBLIC_KEY" in assert_one_error_line(status, out, err)


@pytest.fixture
def write_lock_held(db: Path) -> Iterator[None]:
    """Another process's writer holds the database's write lock."""
    fd = os.open(f"{db}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.mark.usefixtures("write_lock_held")
def test_busy_database_is_one_line_and_exit_3(run, db, monkeypatch):
    """A write that cannot start within ORGSETTINGS_DB_WAIT_SECONDS: exit 3, one line."""
    monkeypatch.setenv("ORGSETTINGS_DB_WAIT_SECONDS", "0.2")
    status, out, err = run("--db", str(db), "org", "create", "--name", "Busy", "--json")
    assert assert_one_error_line(status, out, err).startswith(
        "orgsettings: error: database unavailable: "
    )
    assert status == 3


# -- plain output ------------------------------------------------------------------------------


def test_plain_output_uses_json_literals(run, db):
    """Without --json, values print as JSON (null, true, false), never as Python literals."""
    status, out, _ = run("--db", str(db), "org", "create", "--name", "Plain")
    assert status == 0
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    assert fields["billing_email"] == "null"
    assert fields["is_reseller"] == "false"
    assert json.loads(fields["quiet_hours"])["enabled"] is False
    org_id = fields["id"]
    outputs = [out]
    for args in (
        ["org", "show", org_id],
        ["key", "create", "--org", org_id, "--scope", "org:read"],
        ["brand", "create", "--org", org_id],
        ["token", "create", "--org", org_id, "--role", "USER", "--sub", "u"],
        ["init"],
    ):
        status, out, err = run("--db", str(db), *args)
        assert status == 0, err
        outputs.append(out)
    for out in outputs:
        for line in out.splitlines():
            _, value = line.split(": ", 1)
            assert value not in PYTHON_LITERALS, line
            assert "None" not in value and "True" not in value and "False" not in value, line


# -- the installed script --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["token", "create", "--role", "SUPERADMIN", "--sub", ""],
        ["token", "create", "--role", "SUPERADMIN", "--sub", "u", "--ttl", "99999999999999"],
        ["org", "show", UNKNOWN_ORG],
        ["org", "create", "--name", "A", "--throughput-tier", "abc"],
        ["serve", "--port", "99999"],
    ],
)
def test_console_script_never_prints_a_traceback(db, args):
    """Through the real console script: one stderr line, non-zero exit, empty stdout."""
    script = Path(sys.executable).parent / "orgsettings"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    result = subprocess.run(
        [str(script), "--db", str(db), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert_one_error_line(result.returncode, result.stdout, result.stderr)


def test_console_script_with_a_directory_db(tmp_path):
    """The reported case: --db pointing at a directory, through the real script."""
    script = Path(sys.executable).parent / "orgsettings"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    result = subprocess.run(
        [str(script), "--db", str(tmp_path), "key", "revoke", "key_x", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    line = assert_one_error_line(result.returncode, result.stdout, result.stderr)
    assert line == f"orgsettings: error: --db {tmp_path} is a directory"
