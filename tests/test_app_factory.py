"""The app factory: start-up work done once, and nothing leaking between two apps."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import JWT_SECRET, OPERATOR
from handlers import routing
from handlers.app import create_app
from handlers.config import Config
from handlers.dispatch import OperationDispatcher
from handlers.operations import Operation


def _app(tmp_path: Path, name: str):
    return create_app(Config(db_path=tmp_path / name, jwt_secret=JWT_SECRET, log_requests=False))


def test_every_spec_operation_is_dispatched_without_per_request_set_up(app) -> None:
    """Each of the seven operations runs through an Operation built once at start-up."""
    dispatcher = app._middleware_app.asgi_app
    assert isinstance(dispatcher, OperationDispatcher)
    routed = {k for k in app.app.view_functions if k.startswith(("v1.", "dashboard."))}
    assert len(routed) == 7
    assert len(dispatcher.operations) == 7
    assert all(isinstance(op, Operation) for op in dispatcher.operations.values())


def test_a_second_app_in_one_process_gets_one_middleware_stack(tmp_path: Path) -> None:
    """Regression: a shared middleware list once gave the second app two request-id layers."""
    apps = [_app(tmp_path, "a.db"), _app(tmp_path, "b.db")]
    for app in apps:
        with app.test_client() as client:
            response = client.get("/v1/organization")
        assert response.status_code == 401
        assert response.json()["error"]["request_id"] == response.headers["x-request-id"]
        app.app.extensions["orgsettings"].store.close()


@pytest.mark.parametrize("max_routes", [4096, 2])
def test_remembered_routes_keep_each_path_its_own_parameters(
    client, store, auth, monkeypatch, max_routes
) -> None:
    """Requests to many organizations' paths, each repeated, each reach their own organization."""
    monkeypatch.setattr(routing, "MAX_ROUTES", max_routes)
    orgs = [store.create_org(name=f"Org {n}", actor=OPERATOR) for n in range(4)]
    for org in [*orgs, *orgs, *reversed(orgs)]:
        for n, method in enumerate(("PUT", "GET", "PUT")):
            url = f"/api/organizations/{org['id']}/contact-protection-settings"
            body = {"contactProtectionPeriod": n + 1}
            response = client.request(method, url, json=body, headers=auth("SUPERADMIN", None))
            assert response.status_code == 200, (method, response.text)
        assert store.get_org(org["id"])["contact_protection_period"] == 3
    # A route that was remembered still refuses what it refused the first time.
    for _ in range(2):
        assert (
            client.delete(
                f"/api/organizations/{orgs[0]['id']}/contact-protection-settings",
                headers=auth("SUPERADMIN", None),
            ).status_code
            == 405
        )
