"""``orgsettings opt-out list|show|add|remove``: the ledger for operators, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import OPERATOR, POSTGRESQL, new_database, sync_store
from handlers.cli.main import main

NUMBER = "+14155550123"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This test's database, with the CLI's state beside it."""
    monkeypatch.setenv("ORGSETTINGS_STATE_DIR", str(tmp_path / "cli"))
    return new_database(tmp_path) if POSTGRESQL else tmp_path / "orgsettings.db"


@pytest.fixture
def run(db: Any, capsys: pytest.CaptureFixture[str]):
    """``orgsettings --db DB ARGS... --json``: (exit status, stdout's object or None, stderr)."""

    def call(*args: str) -> tuple[int, Any, str]:
        status = main(["--db", str(db), *args, "--json"])
        captured = capsys.readouterr()
        return status, json.loads(captured.out) if captured.out else None, captured.err

    return call


@pytest.fixture
def org_id(run) -> str:
    assert run("init")[0] == 0
    return run("org", "create", "--name", "Acme Health")[1]["id"]


def test_add_show_list_remove(run, org_id):
    status, added, _ = run("opt-out", "add", NUMBER, "--org", org_id, "--reason", "by phone")
    assert status == 0
    assert (added["source"], added["reason"], added["created"]) == ("api", "by phone", True)
    again = run("opt-out", "add", NUMBER, "--org", org_id)[1]
    assert again["created"] is False and again["created_at"] == added["created_at"]
    assert run("opt-out", "show", NUMBER, "--org", org_id)[1]["reason"] == "by phone"
    listed = run("opt-out", "list", "--org", org_id)[1]
    assert [e["phone_number"] for e in listed["opt_outs"]] == [NUMBER]
    assert listed["next_cursor"] is None
    assert run("opt-out", "remove", NUMBER, "--org", org_id)[1]["phone_number"] == NUMBER
    status, out, err = run("opt-out", "show", NUMBER, "--org", org_id)
    assert (status, out) == (1, None)
    assert "is not opted out" in err


def test_list_pages_with_the_cursor_it_prints(run, org_id):
    numbers = [f"+1415555{n:04d}" for n in range(3)]
    for number in numbers:
        run("opt-out", "add", number, "--org", org_id)
    first = run("opt-out", "list", "--org", org_id, "--limit", "2")[1]
    rest = run("opt-out", "list", "--org", org_id, "--cursor", first["next_cursor"])[1]
    seen = [e["phone_number"] for e in first["opt_outs"] + rest["opt_outs"]]
    assert seen == numbers[::-1]


def test_an_impossible_number_is_refused_and_nothing_is_written(run, org_id):
    status, out, err = run("opt-out", "add", "+4402071234567", "--org", org_id)
    assert (status, out) == (2, None)
    assert "use +442071234567" in err
    assert run("opt-out", "list", "--org", org_id)[1]["opt_outs"] == []


def test_an_unknown_organization_is_named(run, org_id):
    status, _, err = run("opt-out", "list", "--org", "0190a1b2-c3d4-7e5f-a7b8-c9d0e1f2a3b4")
    assert status == 1
    assert "organization" in err and "not found" in err


def test_a_keyword_entry_is_not_removed_by_hand(run, org_id, db):
    """Only the contact removes an entry made by STOP, from the CLI as from the API."""
    store = sync_store(db)
    try:
        store.receive_inbound(
            org_id,
            message_id="SM1",
            phone_number=NUMBER,
            fingerprint="f",
            decide=lambda org, entry: ({"keyword": "STOP"}, "add"),
            actor=OPERATOR,
        )
    finally:
        store.close()
    status, out, err = run("opt-out", "remove", NUMBER, "--org", org_id)
    assert (status, out) == (2, None)
    assert "START" in err
    assert run("opt-out", "show", NUMBER, "--org", org_id)[1]["source"] == "keyword"
