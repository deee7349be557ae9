"""The Swagger UI and the spec files are served exactly as Connexion's own Swagger UI
middleware serves them, although API requests no longer pass through it."""

from __future__ import annotations

from collections.abc import Iterator

import connexion
import pytest
from connexion.options import SwaggerUIOptions
from starlette.testclient import TestClient

from handlers.specs import SPEC_DIR, load_spec

DOCS_PATHS = [
    f"{base}{path}"
    for base in ("/v1", "/api")
    for path in (
        "/ui",
        "/ui/",
        "/ui/index.html",
        "/ui/swagger-ui.css",
        "/ui/swagger-ui-bundle.js",
        "/ui/no-such-file.js",
        "/openapi.json",
        "/openapi.yaml",
        "/openapi.json/",
    )
]


@pytest.fixture(scope="module")
def stock() -> Iterator[TestClient]:
    """Stock Connexion serving the same specs with the same Swagger UI options."""
    app = connexion.AsyncApp(
        __name__,
        specification_dir=SPEC_DIR,
        swagger_ui_options=SwaggerUIOptions(spec_path="/openapi.json", swagger_ui_path="/ui"),
        resolver_error=501,
    )
    app.add_api(load_spec("v1.yaml"), base_path="/v1")
    app.add_api(load_spec("dashboard.yaml"), base_path="/api")
    with app.test_client(follow_redirects=False) as client:
        yield client


def test_docs_answer_as_stock_connexion_does(app, stock: TestClient):
    differences = []
    with app.test_client(follow_redirects=False) as client:
        for path in DOCS_PATHS:
            ours, theirs = client.get(path), stock.get(path)
            same = ours.status_code == theirs.status_code
            if same and theirs.status_code < 400:
                same = ours.content == theirs.content and all(
                    ours.headers.get(name) == theirs.headers.get(name)
                    for name in ("content-type", "location")
                )
            if not same:
                differences.append((path, ours.status_code, theirs.status_code))
    assert differences == []
    assert len(DOCS_PATHS) == 18


def test_the_docs_pages_are_there(client: TestClient):
    assert client.get("/v1/ui/").status_code == 200
    assert client.get("/api/openapi.json").json()["servers"][0]["url"] == "/api"
    assert client.get("/v1/openapi.yaml").headers["content-type"].startswith("text/yaml")
