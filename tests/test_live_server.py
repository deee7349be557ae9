"""A real `orgsettings serve` process on a free loopback port, called over HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from live import cli, full_key, start_server

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "live-test-secret-" + "y" * 32}


def call(
    method: str, url: str, token: str | None = None, body: Any = None, headers: dict | None = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns status, headers and the decoded JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _lower(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers), json.loads(err.read() or b"null")


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    """A server over a fresh database holding one org, a full-scope key and an ADMIN token."""
    db: Path = tmp_path_factory.mktemp("live") / "live.db"
    cli(db, "init", env=SECRET_ENV)
    org = cli(db, "org", "create", "--name", "Live Org", env=SECRET_ENV)
    key = full_key(db, org["id"], env=SECRET_ENV)
    token = cli(
        db,
        "token",
        "create",
        "--org",
        org["id"],
        "--role",
        "ADMIN",
        "--sub",
        "u-1",
        env=SECRET_ENV,
    )
    server = start_server(db, env=SECRET_ENV)
    yield {"server": server, "org": org, "key": key, "token": token["token"], "db": db}
    server.stop()


def test_v1_read_patch_and_audit_over_http(live: dict[str, Any]) -> None:
    """A PATCH over the wire is answered, committed, and shows on the audit trail."""
    base, key = live["server"].base_url, live["key"]["key"]
    status, headers, body = call("GET", f"{base}/v1/organization", key)
    assert status == 200 and body["data"]["name"] == "Live Org"
    status, headers, body = call(
        "PATCH",
        f"{base}/v1/organization",
        key,
        {"name": "Live Org 2"},
        {"If-Match": headers["etag"]},
    )
    assert status == 200 and body["data"]["name"] == "Live Org 2"
    status, _, events = call("GET", f"{base}/v1/audit_events?limit=1", key)
    assert events["data"][0]["changes"] == {"name": {"from": "Live Org", "to": "Live Org 2"}}
    assert events["data"][0]["request_id"] == headers["x-request-id"]


def test_dashboard_put_is_visible_on_v1_audit_trail(live: dict[str, Any]) -> None:
    """The two surfaces share one record and one audit trail."""
    base, org_id = live["server"].base_url, live["org"]["id"]
    url = f"{base}/api/organizations/{org_id}/contact-protection-settings"
    status, _, body = call("PUT", url, live["token"], {"contactProtectionPeriod": 72})
    assert status == 200
    assert body == {
        "success": True,
        "message": "Contact protection settings updated",
        "data": {"contactProtectionPeriod": 72},
    }
    _, _, events = call("GET", f"{base}/v1/audit_events?limit=1", live["key"]["key"])
    assert events["data"][0]["surface"] == "dashboard"
    assert events["data"][0]["actor"] == {"type": "user", "id": "u-1", "role": "ADMIN"}


def test_errors_over_http_carry_request_id_and_no_internals(live: dict[str, Any]) -> None:
    """A bad key is a v1 401 envelope with WWW-Authenticate and the echoed request id."""
    base = live["server"].base_url
    status, headers, body = call(
        "GET", f"{base}/v1/organization", "am_live_" + "x" * 40, headers={"X-Request-Id": "req-42"}
    )
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert body["error"]["request_id"] == "req-42" == headers["x-request-id"]


def test_health_probes_and_specs_need_no_auth(live: dict[str, Any]) -> None:
    """Probes answer without credentials; each surface serves its own spec."""
    base = live["server"].base_url
    assert call("GET", f"{base}/healthz")[0] == 200
    assert call("GET", f"{base}/readyz")[0] == 200
    assert call("GET", f"{base}/v1/openapi.json")[2]["info"]["title"].startswith("orgsettings")
    assert (
        "/organizations/{organizationId}/missed-call-message"
        in call("GET", f"{base}/api/openapi.json")[2]["paths"]
    )


def test_access_log_is_json_without_secrets(live: dict[str, Any]) -> None:
    """Every request logs one JSON line, and no key or token ever appears in the log."""
    base = live["server"].base_url
    call("GET", f"{base}/v1/organization", live["key"]["key"], headers={"X-Request-Id": "log-1"})
    deadline = time.monotonic() + 5
    mine: list[dict[str, Any]] = []
    while not mine and time.monotonic() < deadline:  # the line is written after the response
        lines = [json.loads(x) for x in live["server"].log().splitlines() if x.startswith("{")]
        mine = [line for line in lines if line.get("request_id") == "log-1"]
        time.sleep(0.02)
    assert len(mine) == 1
    assert mine[0]["status"] == 200 and mine[0]["actor_id"] == live["key"]["id"]
    assert {"method", "path", "duration_ms"} <= set(mine[0])
    log = live["server"].log()
    assert live["key"]["key"] not in log and live["token"] not in log
