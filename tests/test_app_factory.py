"""The app factory: start-up work done once, and nothing leaking between two apps."""

from __future__ import annotations

from pathlib import Path

from conftest import JWT_SECRET
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
