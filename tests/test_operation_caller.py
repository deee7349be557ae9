"""OperationCaller: each operation's function gets exactly what the validators checked.

A small spec of its own, served through the same layers as the app (RequestContext, the
validators, bearer security, OperationCaller last), with handlers that record what they were
called with. The real specs' operations are covered by every endpoint test; this pins each kind
of argument, each answer form, the fall-through, and the start-up refusals.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from typing import Any

import connexion
import pytest
from connexion.jsonifier import Jsonifier
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.resolver import Resolver
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from handlers.app import OrjsonModule
from handlers.auth.security import bearer_security_map
from handlers.errors import Unauthorized
from handlers.http.metrics import Metrics
from handlers.http.middleware import RequestContext
from handlers.http.operations import OperationCaller, UnsupportedSpec, refuse_unsupported
from handlers.http.rate_limit import RateLimits
from handlers.http.rendering import ErrorRenderer
from handlers.http.request_validation import ValidationOffTheApiPath
from handlers.http.routes import RouteTable
from handlers.http.validation import SchemaChecks, validator_map
from handlers.specs import load_spec

CALLS: list[dict[str, Any]] = []

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "caller", "version": "1"},
    "security": [{"bearer": []}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/things/{thing_id}": {
            "parameters": [
                {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "get": {
                "operationId": "get_thing",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 7}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok", "content": {"application/json": {}}}},
            },
            "put": {
                "operationId": "put_thing",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}},
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {"201": {"description": "ok", "content": {"application/json": {}}}},
            },
            "delete": {
                "operationId": "delete_thing",
                "responses": {"204": {"description": "gone"}},
            },
        }
    },
}


async def get_thing(thing_id: int, token_info: dict[str, Any], limit: int, cursor: str = "-"):
    """Answers a bare body (200)."""
    CALLS.append({"thing_id": thing_id, "limit": limit, "cursor": cursor, "token": token_info})
    return {"id": thing_id, "limit": limit, "cursor": cursor}


async def put_thing(thing_id: int, body: dict[str, Any]):
    """Answers (body, status, headers); takes no token_info."""
    CALLS.append({"thing_id": thing_id, "body": body})
    return {"id": thing_id, **body}, 201, {"ETag": '"1"'}


async def delete_thing(thing_id: int):
    """Answers (None, 204): no body."""
    CALLS.append({"thing_id": thing_id})
    return None, 204


HANDLERS = {"get_thing": get_thing, "put_thing": put_thing, "delete_thing": delete_thing}


async def _token(token: str, _request: Any) -> dict[str, Any]:
    if token != "good":
        raise Unauthorized()
    return {"sub": "tester"}


def _app(routes_spec: dict[str, Any] = SPEC) -> connexion.AsyncApp:
    """The small spec behind the app's own layers, OperationCaller last; the route table (what
    the outermost middleware knows of the spec's operations) is built from ``routes_spec``."""
    jsonifier = Jsonifier(OrjsonModule)
    resolver = Resolver(function_resolver=HANDLERS.__getitem__)
    validators = {"v1": validator_map(frozenset(), SchemaChecks())}
    options = {"resolver": resolver, "strict_validation": True, "validator_map": validators["v1"]}
    validation = functools.partial(ValidationOffTheApiPath, apis=[(SPEC, "/t", options)])
    app = connexion.AsyncApp(
        __name__,
        jsonifier=jsonifier,
        middlewares=[
            *(
                validation if m is RequestValidationMiddleware else m
                for m in ConnexionMiddleware.default_middlewares
            ),
            functools.partial(
                OperationCaller, jsonifier=jsonifier, validators=validators, strict_validation=True
            ),
        ],
        resolver=resolver,
        strict_validation=True,
    )
    app.add_api(
        SPEC,
        base_path="/t",
        security_map=bearer_security_map(_token),
        validator_map=validators["v1"],
    )
    app.add_error_handler(Exception, ErrorRenderer())
    app.add_middleware(
        RequestContext,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        max_body_bytes=65536,
        log_requests=False,
        limits=RateLimits(0, 0),
        metrics=Metrics(),
        routes=RouteTable([(routes_spec, "/t", "v1")]),
    )
    app.add_url_rule("/plain", "plain", _plain, methods=["GET"])
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    """A client of ``_app()``, with a good token."""
    CALLS.clear()
    with _app().test_client(headers={"Authorization": "Bearer good"}) as test_client:
        yield test_client


async def _plain(_request: Any) -> PlainTextResponse:
    return PlainTextResponse("not an operation")


def test_path_and_query_values_are_the_validated_ones_with_defaults(client: TestClient):
    """Path and query values arrive typed as the schema says; a query parameter left out gets
    its schema default, or the function's own default when the schema has none."""
    assert client.get("/t/things/42").status_code == 200
    assert CALLS[-1] == {"thing_id": 42, "limit": 7, "cursor": "-", "token": {"sub": "tester"}}
    assert client.get("/t/things/5?limit=3&cursor=abc").status_code == 200
    assert CALLS[-1] == {"thing_id": 5, "limit": 3, "cursor": "abc", "token": {"sub": "tester"}}


def test_a_bare_body_answer_is_200_json(client: TestClient):
    response = client.get("/t/things/9?limit=2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": 9, "limit": 2, "cursor": "-"}
    assert CALLS[-1]["token"] == {"sub": "tester"}


def test_the_body_is_the_validated_value(client: TestClient):
    response = client.put("/t/things/3", json={"name": "n1"})
    assert (response.status_code, response.json()) == (201, {"id": 3, "name": "n1"})
    assert response.headers["etag"] == '"1"'
    assert CALLS[-1] == {"thing_id": 3, "body": {"name": "n1"}}


def test_an_optional_body_left_out_arrives_as_an_empty_object(client: TestClient):
    response = client.put("/t/things/3")
    assert (response.status_code, response.json()) == (201, {"id": 3})
    assert CALLS[-1] == {"thing_id": 3, "body": {}}


def test_a_body_the_validator_refuses_never_reaches_the_function(client: TestClient):
    response = client.put("/t/things/3", json={"name": 5, "extra": 1})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "extra": "unknown field",
        "name": "must be a string",
    }
    assert CALLS == []


def test_a_media_type_in_another_case_is_validated_as_json(client: TestClient):
    """Media types are case-insensitive: ``Application/JSON`` is checked as application/json
    (Connexion's own lookup skipped the body schema for it, and the body went unvalidated)."""
    headers = {"Content-Type": "Application/JSON"}
    refused = client.put("/t/things/3", content=b'{"name": 5}', headers=headers)
    assert (refused.status_code, refused.json()["error"]["details"]) == (
        422,
        {"name": "must be a string"},
    )
    assert CALLS == []
    accepted = client.put("/t/things/3", content=b'{"name": "n"}', headers=headers)
    assert accepted.status_code == 201
    assert CALLS == [{"thing_id": 3, "body": {"name": "n"}}]


def test_a_media_type_the_operation_does_not_take_is_415(client: TestClient):
    response = client.put("/t/things/3", content=b"name=n", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert CALLS == []


def test_an_operation_the_route_table_misses_is_validated_by_connexion():
    """Were the outermost route table to miss an operation Connexion routes, its request would
    still meet Connexion's own validation (ValidationOffTheApiPath) before Connexion's
    handler: nothing reaches a function unvalidated."""
    CALLS.clear()
    without_put = copy.deepcopy(SPEC)
    del without_put["paths"]["/things/{thing_id}"]["put"]
    app = _app(routes_spec=without_put)
    with app.test_client(headers={"Authorization": "Bearer good"}) as client:
        refused = client.put("/t/things/3", json={"name": 5, "extra": 1})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"] == {
            "extra": "unknown field",
            "name": "must be a string",
        }
        assert CALLS == []
        accepted = client.put("/t/things/3", json={"name": "n1"})
        assert (accepted.status_code, accepted.json()) == (201, {"id": 3, "name": "n1"})
        assert CALLS == [{"thing_id": 3, "body": {"name": "n1"}}]


def test_a_parameter_the_validator_refuses_never_reaches_the_function(client: TestClient):
    response = client.get("/t/things/4?limit=1&limit=2&cursor=a&other=1")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "limit": "must not be repeated",
        "other": "unknown query parameter",
    }
    assert client.get("/t/things/4?limit=many").json()["error"]["details"] == {
        "limit": "must be an integer"
    }
    assert CALLS == []


def test_an_answer_without_a_body_is_204_with_none(client: TestClient):
    response = client.delete("/t/things/8")
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers
    assert CALLS[-1] == {"thing_id": 8}


def test_a_refused_token_never_reaches_the_function(client: TestClient):
    response = client.get("/t/things/1", headers={"Authorization": "Bearer bad"})
    assert response.status_code == 401
    assert CALLS == []


def test_what_is_not_an_operation_goes_on_to_connexion(client: TestClient):
    assert client.get("/plain").text == "not an operation"
    assert client.post("/t/things/1").status_code == 405
    assert client.get("/t/nothing").status_code == 404
    assert CALLS == []


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (
            lambda op: op.update(
                requestBody={"content": {"application/x-www-form-urlencoded": {"schema": {}}}}
            ),
            "request body application/x-www-form-urlencoded",
        ),
        (
            lambda op: op["responses"]["200"]["content"].update({"text/plain": {}}),
            "response text/plain",
        ),
        (
            lambda op: op["responses"].update(
                {"404": {"description": "x", "content": {"application/problem+json": {}}}}
            ),
            "several response media types",
        ),
        (
            lambda op: op["parameters"].append({"name": "c", "in": "cookie", "schema": {}}),
            "cookie parameter c",
        ),
        (
            lambda op: op["parameters"].append({"name": "a-b", "in": "query", "schema": {}}),
            "parameter name 'a-b'",
        ),
    ],
)
def test_a_spec_feature_it_does_not_handle_is_refused_at_start(change, refused):
    spec = copy.deepcopy(SPEC)
    change(spec["paths"]["/things/{thing_id}"]["get"])
    with pytest.raises(UnsupportedSpec, match=refused):
        refuse_unsupported(spec)


@pytest.mark.parametrize("name", ["v1.yaml", "dashboard.yaml"])
def test_the_service_specs_use_only_what_it_handles(name: str):
    refuse_unsupported(load_spec(name))
