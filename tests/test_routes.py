"""The route table: one match per request answers the operation, its scopes, Allow and sentences."""

from __future__ import annotations

import pytest

from handlers.http import request_context
from handlers.http.routes import UNROUTED, RouteTable
from handlers.specs import load_spec
from spec_tools import body_examples, load, operations

ORG = "/api/organizations/01890a5d-ac96-774b-bcce-b302099a8057"


@pytest.fixture(scope="module")
def table() -> RouteTable:
    """The table the app builds, from both specs."""
    return RouteTable(
        [(load_spec("v1.yaml"), "/v1", "v1"), (load_spec("dashboard.yaml"), "/api", "dashboard")]
    )


@pytest.mark.parametrize(
    ("method", "path", "surface", "operation", "allow"),
    [
        ("GET", "/v1/organization", "v1", "get_organization", "GET, HEAD, PATCH"),
        ("HEAD", "/v1/organization/", "v1", "get_organization", "GET, HEAD, PATCH"),
        ("PATCH", "/v1/organization", "v1", "patch_organization", "GET, HEAD, PATCH"),
        ("DELETE", "/v1/organization", "v1", "unrouted", "GET, HEAD, PATCH"),
        ("GET", "/v1/nope", "v1", "unrouted", None),
        ("GET", "/v1", "v1", "unrouted", None),
        ("PUT", f"{ORG}/missed-call-message", "dashboard", "put_missed_call_message", None),
        ("POST", f"{ORG}/missed-call-message", "dashboard", "unrouted", "GET, HEAD, PUT"),
        ("GET", f"{ORG}/x/missed-call-message", "dashboard", "unrouted", None),
        ("GET", "/healthz", "service", "/healthz", None),
        ("GET", "/v1x/organization", "service", "unrouted", None),
    ],
)
def test_a_request_finds_its_operation_and_the_methods_of_its_path(
    table, method, path, surface, operation, allow
):
    route = table.match(method, path)
    assert (route.surface, route.operation) == (surface, operation)
    if allow is not None:
        assert route.allow == allow


@pytest.mark.parametrize("name", ["v1", "dashboard"])
def test_every_operation_is_a_route_with_the_scopes_of_its_spec(table, name):
    """Each spec operation, at a path built from its template, is that operation's route."""
    base = {"v1": "/v1", "dashboard": "/api"}[name]
    for template, method, op in operations(load(name)):
        path = base + template.replace("{organizationId}", "org-1")
        route = table.match(method.upper(), path)
        assert route.operation == op["operationId"].rsplit(".", 1)[-1]
        assert route.scopes == tuple(op.get("x-required-scopes", ()))


def test_outside_a_request_the_route_is_unrouted():
    assert request_context.current().route is UNROUTED


def test_each_declared_error_sentence_is_one_the_operation_documents():
    """x-error-sentences only names sentences the operation's own examples show."""
    documented = {
        (ex.path, ex.method, ex.status, ex.value.get("error"))
        for ex in body_examples("dashboard")
        if ex.status is not None and isinstance(ex.value, dict)
    }
    declared = [
        (path, method, status, sentence["error"])
        for path, method, op in operations(load("dashboard"))
        for status, sentence in op.get("x-error-sentences", {}).items()
    ]
    assert declared
    for entry in declared:
        assert entry in documented
