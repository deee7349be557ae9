"""The app factory: start-up work done once, and nothing leaking between two apps."""

from __future__ import annotations

from pathlib import Path

from conftest import JWT_SECRET
from handlers.app import create_app
from handlers.config import Config
from handlers.operations import LeanOperation


def _app(tmp_path: Path, name: str):
    return create_app(Config(db_path=tmp_path / name, jwt_secret=JWT_SECRET, log_requests=False))


def test_every_operation_view_is_decorated_once_at_start_up(app) -> None:
    """No operation is left on Connexion's per-request-decorating view."""
    views = {k: v for k, v in app.app.view_functions.items() if k.startswith(("v1.", "dashboard."))}
    assert len(views) == 7
    assert all(isinstance(view, LeanOperation) for view in views.values())


def test_a_second_app_in_one_process_gets_one_middleware_stack(tmp_path: Path) -> None:
    """Regression: a shared middleware list once gave the second app two request-id layers."""
    apps = [_app(tmp_path, "a.db"), _app(tmp_path, "b.db")]
    for app in apps:
        with app.test_client() as client:
            response = client.get("/v1/organization")
        assert response.status_code == 401
        assert response.json()["error"]["request_id"] == response.headers["x-request-id"]
        app.app.extensions["orgsettings"].store.close()
