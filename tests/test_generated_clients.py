"""The specs generate working Python clients (openapi-python-client, pinned in the test extra).

Each spec is generated into a temporary folder with ``--fail-on-warning``; every generated
module is imported and every annotation resolved (a broken or dangling type fails here); every
documented response example round-trips through its generated model; and each client reads,
writes, and reads back a typed error body from a live server.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from live import BIN, cli, start_server
from spec_tools import SPECS, at, body_examples, load

ENV = {"ORGSETTINGS_JWT_SECRET": "client-test-secret-" + "c" * 32}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
PACKAGES = {"v1": "orgsettings_v1_client", "dashboard": "orgsettings_dashboard_client"}


def generate(spec: str, out: Path) -> subprocess.CompletedProcess:
    """Run openapi-python-client for one spec; the venv's ruff formats the output."""
    return subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(SPECS[spec]),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGES[spec]),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=120,
    )


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """Both generated client packages, importable for this module's tests."""
    out = tmp_path_factory.mktemp("clients")
    for spec in SPECS:
        result = generate(spec, out)
        output = result.stdout + result.stderr
        assert result.returncode == 0 and "Warning" not in output, output
    sys.path.insert(0, str(out))
    try:
        yield {spec: importlib.import_module(package) for spec, package in PACKAGES.items()}
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.startswith(tuple(PACKAGES.values()))]:
            del sys.modules[name]


def modules(package: ModuleType) -> Iterator[ModuleType]:
    """The package and every module in it, imported."""
    yield package
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        yield importlib.import_module(info.name)


@pytest.mark.parametrize("spec", SPECS)
def test_every_generated_annotation_resolves(clients: dict[str, ModuleType], spec: str) -> None:
    """Every module imports and every class's and function's type hints resolve."""
    # Generated modules import model classes for annotations under TYPE_CHECKING only, so
    # names resolve against the module plus the models package, as a type checker would.
    models = vars(importlib.import_module(f"{PACKAGES[spec]}.models"))
    checked = 0
    for module in modules(clients[spec]):
        names = {**models, **vars(module)}
        for _, member in inspect.getmembers(module, inspect.isclass):
            if member.__module__ == module.__name__:
                typing.get_type_hints(member, globalns=names)
                for _, method in inspect.getmembers(member, inspect.isfunction):
                    typing.get_type_hints(method, globalns=names)
                checked += 1
        for _, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__:
                typing.get_type_hints(function, globalns=names)
                checked += 1
    assert checked > 10


def same_instants(value: Any) -> Any:
    """``value`` with RFC 3339 timestamps parsed, so `Z` and `+00:00` spellings compare equal."""
    if isinstance(value, dict):
        return {k: same_instants(v) for k, v in value.items()}
    if isinstance(value, list):
        return [same_instants(v) for v in value]
    if isinstance(value, str) and TIMESTAMP.match(value):
        return datetime.fromisoformat(value)
    return value


@pytest.mark.parametrize("spec", SPECS)
def test_documented_responses_round_trip_through_models(
    clients: dict[str, ModuleType], spec: str
) -> None:
    """Each documented response example parses into its model and serializes back unchanged."""
    models = importlib.import_module(f"{PACKAGES[spec]}.models")
    seen = 0
    for example in body_examples(spec):
        if example.status is None:
            continue
        ref = at(load(spec), example.schema_ref).get("$ref", "")
        model = getattr(models, ref.rsplit("/", 1)[-1], None)
        assert model is not None, (example.id, ref)
        round_trip = model.from_dict(example.value).to_dict()
        assert same_instants(round_trip) == same_instants(example.value), example.id
        seen += 1
    assert seen > 5


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live server with one organization, a full-scope key and an ADMIN token."""
    db = tmp_path_factory.mktemp("clients-live") / "clients.db"
    cli(db, "init", env=ENV)
    org = cli(db, "org", "create", "--name", "Client Org", env=ENV)["id"]
    scopes = ("--scope", "org:read", "--scope", "org:admin:write", "--scope", "audit:read")
    key = cli(db, "key", "create", "--org", org, *scopes, env=ENV)["key"]
    token = cli(db, "token", "create", "--org", org, "--role", "ADMIN", "--sub", "c", env=ENV)
    server = start_server(db, env=ENV)
    yield {"url": server.base_url, "org": org, "key": key, "token": token["token"]}
    server.stop()


def test_v1_client_reads_writes_and_reads_a_typed_error(
    clients: dict[str, ModuleType], live: dict[str, Any]
) -> None:
    """GET, a PATCH that succeeds, and rejected PATCHes (stale, invalid) with typed errors."""
    package = PACKAGES["v1"]
    api = importlib.import_module(f"{package}.api.organization")
    get = importlib.import_module(f"{api.__name__}.handlers_v1_organization_get_organization")
    patch = importlib.import_module(f"{api.__name__}.handlers_v1_organization_patch_organization")
    models = importlib.import_module(f"{package}.models")
    client = clients["v1"].AuthenticatedClient(base_url=f"{live['url']}/v1", token=live["key"])

    read = get.sync_detailed(client=client)
    assert read.status_code == 200 and isinstance(read.parsed, models.OrganizationResponse)
    assert read.parsed.data.name == "Client Org"
    assert read.parsed.data.tenant_type == models.OrganizationTenantType.COMMERCIAL

    queue = models.QuietHoursUpdate(mode=models.QuietHoursUpdateMode.QUEUE)
    update = models.OrganizationUpdate(name="Client Org 2", billing_email=None, quiet_hours=queue)
    written = patch.sync_detailed(client=client, body=update, if_match=read.headers["etag"])
    assert written.status_code == 200 and written.parsed.data.name == "Client Org 2"
    assert written.parsed.data.billing_email is None
    assert written.parsed.data.quiet_hours.mode == models.QuietHoursMode.QUEUE

    stale = patch.sync_detailed(client=client, body=update, if_match=read.headers["etag"])
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Error)
    assert stale.parsed.error.code == "PRECONDITION_FAILED"

    rejected = patch.sync_detailed(
        client=client, body=models.OrganizationUpdate(message_retention_days=10)
    )
    assert rejected.status_code == 422 and isinstance(rejected.parsed, models.Error)
    assert rejected.parsed.error.code == "VALIDATION_FAILED"
    assert "message_retention_days" in rejected.parsed.error.details.additional_properties


def test_dashboard_client_reads_writes_and_reads_a_typed_error(
    clients: dict[str, ModuleType], live: dict[str, Any]
) -> None:
    """GET, a PUT that succeeds, and a rejected PUT whose error body is typed."""
    package = PACKAGES["dashboard"]
    api = f"{package}.api.organizations"
    get = importlib.import_module(f"{api}.handlers_dashboard_missed_call_get_missed_call_message")
    put_cp = importlib.import_module(
        f"{api}.handlers_dashboard_contact_protection_put_contact_protection_settings"
    )
    put_mc = importlib.import_module(
        f"{api}.handlers_dashboard_missed_call_put_missed_call_message"
    )
    models = importlib.import_module(f"{package}.models")
    client = clients["dashboard"].AuthenticatedClient(
        base_url=f"{live['url']}/api", token=live["token"]
    )

    read = get.sync_detailed(live["org"], client=client)
    assert read.status_code == 200 and isinstance(read.parsed, models.MissedCallMessageResponse)
    assert read.parsed.missed_call_message is None
    assert read.parsed.missed_call_auto_message_enabled is False

    body = models.UpdateContactProtectionSettingsRequest(contact_protection_period=48)
    written = put_cp.sync_detailed(live["org"], client=client, body=body)
    assert written.status_code == 200
    assert written.parsed.data.contact_protection_period == 48

    bad = models.UpdateMissedCallMessageRequest(missed_call_message="Hi {{customerName}}")
    rejected = put_mc.sync_detailed(live["org"], client=client, body=bad)
    assert rejected.status_code == 400
    assert isinstance(rejected.parsed, models.OrganizationErrorResponse)
    assert rejected.parsed.error == "missedCallMessage contains an unknown placeholder"
    assert "{{customerName}}" in rejected.parsed.details
