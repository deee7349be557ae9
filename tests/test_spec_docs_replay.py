"""Docs never lie: every documented example is replayed against a live server.

Each request body example is sent as documented and must get the operation's documented 2xx.
Each response example gets a recipe below (the credential, the request and the organization
state that produce it) and must come back with its documented status, every header the response
documents as required (each valid for its schema), and a body valid for its documented schema;
recipes marked ``exact`` must also reproduce the example body itself (all but ``request_id``).
The only examples without a recipe are listed in UNREACHABLE with the reason. Every GET is
also sent as HEAD, which the specs document as the GET's status and headers without a body.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from live import ALL_SCOPES, Server, cli, start_server
from replay_recipes import (
    BY_API,
    BY_KEYWORD,
    MCALL,
    MCALL_TEMPLATE,
    NO_BODY,
    PREVIEW,
    RECIPES,
    REJECTED_NUMBERS,
    SD,
    STOPPED_ID,
    TO_OPT_IN,
    UNREACHABLE,
    Recipe,
    inbound,
)
from spec_tools import SPECS, Example, body_examples, errors, follow, load, operations, pointer

ENV = {
    "ORGSETTINGS_JWT_SECRET": "docs-replay-secret-" + "z" * 32,
    "ORGSETTINGS_AUTH_FAILURES_PER_MINUTE": "0",
}
BASES = {"v1": "/v1", "dashboard": "/api"}


def lookup(table: dict, spec: str, method: str, path: str, *rest: str) -> Any:
    """The most specific entry for an example: exact method and path first, then wildcards."""
    for m, p in ((method, path), (method, "*"), ("*", "*")):
        if (spec, m, p, *rest) in table:
            return table[(spec, m, p, *rest)]
    return None


RESPONSE_EXAMPLES = [ex for name in SPECS for ex in body_examples(name) if ex.status]
REQUEST_EXAMPLES = [ex for name in SPECS for ex in body_examples(name) if ex.status is None]


def _parallel(calls: list[tuple[Any, ...]], db: Path) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda args: cli(db, *args, env=ENV), calls))


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A live server over a fresh database with the organizations and credentials recipes use.

    main: a commercial org (every request that does not say otherwise); personal: a personal
    tenant; reseller: a reseller with one brand; blank: never changed (every default);
    other: the organization of ``other_admin``; queued: "Acme Health, Inc." with quiet hours
    21:00-08:00 in queue mode and the missed-call message on (48 hours of contact protection);
    rejecting: quiet hours in reject mode, one number opted out; silent: auto replies off.
    main's ledger: BY_KEYWORD texted STOP (message STOPPED_ID), BY_API and TO_OPT_IN were
    opted out by hand.
    """
    db = tmp_path_factory.mktemp("replay") / "replay.db"
    cli(db, "init", env=ENV)
    names = ["main", "personal", "reseller", "blank", "other", "queued", "rejecting", "silent"]
    created = _parallel(
        [("org", "create", "--name", "Acme Health")]
        + [
            ("org", "create", "--name", n.title(), "--tenant-type", "personal")
            if n == "personal"
            else ("org", "create", "--name", n.title())
            for n in names[1:]
        ],
        db,
    )
    orgs = {name: org["id"] for name, org in zip(names, created, strict=True)}
    everything = tuple(arg for scope in ALL_SCOPES for arg in ("--scope", scope))
    token = ("token", "create", "--role")
    jobs = {
        "key": ("key", "create", "--org", orgs["main"], *everything),
        "read_key": ("key", "create", "--org", orgs["main"], "--scope", "org:read"),
        "audit_key": ("key", "create", "--org", orgs["main"], "--scope", "audit:read"),
        "personal_key": ("key", "create", "--org", orgs["personal"], *everything),
        "reseller_key": ("key", "create", "--org", orgs["reseller"], *everything),
        "blank_key": ("key", "create", "--org", orgs["blank"], "--scope", "org:read"),
        "queued_key": ("key", "create", "--org", orgs["queued"], *everything),
        "rejecting_key": ("key", "create", "--org", orgs["rejecting"], *everything),
        "silent_key": ("key", "create", "--org", orgs["silent"], *everything),
        "admin": (*token, "ADMIN", "--org", orgs["main"], "--sub", "replay-admin"),
        "user": (*token, "USER", "--org", orgs["main"], "--sub", "replay-user"),
        "superadmin": (*token, "SUPERADMIN", "--sub", "replay-super"),
        "other_admin": (*token, "ADMIN", "--org", orgs["other"], "--sub", "replay-other"),
    }
    made = dict(zip(jobs, _parallel(list(jobs.values()), db), strict=True))
    creds = {k: v.get("key") or v.get("token") for k, v in made.items()}
    server = start_server(db, env=ENV)
    try:
        status, _, _ = send(
            server, "PATCH", "/v1/organization", creds["reseller_key"], {"is_reseller": True}
        )
        assert status == 200
        cli(db, "brand", "create", "--org", orgs["reseller"], env=ENV)
        for org, mode in (("queued", "queue"), ("rejecting", "reject")):
            hours = {"enabled": True, "start": "21:00", "end": "08:00", "mode": mode}
            patch = {"name": "Acme Health, Inc.", "quiet_hours": hours}
            assert send(server, "PATCH", "/v1/organization", creds[f"{org}_key"], patch)[0] == 200
        key = creds["key"]
        for number in (BY_API, TO_OPT_IN):
            assert send(server, "PUT", f"/v1/opt_outs/%2B{number[1:]}", key, {})[0] == 201
        stop = inbound(BY_KEYWORD, "STOP", STOPPED_ID)
        assert send(server, "POST", "/v1/inbound_messages", key, stop)[0] == 200
        silent = {"auto_replies": {"enabled": False, "attestation": "We answer STOP and HELP."}}
        assert send(server, "PATCH", "/v1/organization", creds["silent_key"], silent)[0] == 200
        url = f"/v1/opt_outs/%2B{REJECTED_NUMBERS[1][1:]}"
        assert send(server, "PUT", url, creds["rejecting_key"], {})[0] == 201
        dashboard = f"/api/organizations/{orgs['queued']}"
        message = {"missedCallMessage": MCALL_TEMPLATE, "missedCallAutoMessageEnabled": True}
        for path, body in (
            ("/missed-call-message", message),
            ("/contact-protection-settings", {"contactProtectionPeriod": 48}),
        ):
            assert send(server, "PUT", dashboard + path, creds["superadmin"], body)[0] == 200
        yield {"server": server, "orgs": orgs, "creds": creds}
    finally:
        server.stop()


def send(
    server: Server,
    method: str,
    url: str,
    token: str | None,
    body: Any = NO_BODY,
    *,
    raw: bytes | None = None,
    content_type: str = "application/json",
    headers: tuple[tuple[str, str], ...] = (),
) -> tuple[int, Any, Message]:
    """One HTTP request to the live server: the status, the decoded JSON body, the headers."""
    data = raw if raw is not None else None if body is NO_BODY else json.dumps(body).encode()
    request = urllib.request.Request(server.base_url + url, data=data, method=method)
    for name, value in headers:
        request.add_header(name, value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


def url_for(state: dict[str, Any], example: Example, recipe: Recipe) -> str:
    """The request URL: the surface's base, the path with the organization, the query."""
    org_id = recipe.path_org or state["orgs"][recipe.org]
    path = example.path.replace("{organizationId}", org_id)
    path = path.replace("{phone_number}", recipe.phone.replace("+", "%2B"))
    return BASES[example.spec] + path + recipe.query


def credential(state: dict[str, Any], spec: str, recipe: Recipe) -> str | None:
    """The bearer credential a recipe names; v1 keys follow the recipe's organization."""
    if recipe.auth is None:
        return None
    if spec == "v1" and recipe.auth == "key" and recipe.org != "main":
        return state["creds"][f"{recipe.org}_key"]
    return state["creds"][recipe.auth]


def without_request_id(body: Any) -> Any:
    """A v1 error body without its per-request ``request_id``."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}
    return body


def test_every_response_example_has_a_recipe() -> None:
    """A new response example cannot be added without saying how to reproduce it."""
    missing = [
        ex.id
        for ex in RESPONSE_EXAMPLES
        if lookup(RECIPES, ex.spec, ex.method, ex.path, ex.status, ex.name) is None
        and lookup(UNREACHABLE, ex.spec, ex.method, ex.path, ex.status) is None
    ]
    assert not missing, missing


@pytest.mark.parametrize("example", REQUEST_EXAMPLES, ids=lambda ex: ex.id)
def test_request_example_is_accepted(state: dict[str, Any], example: Example) -> None:
    """A documented request body gets the documented 2xx, a valid body, and takes effect."""
    op = load(example.spec)["paths"][example.path][example.method]
    successes = [s for s in op["responses"] if s.startswith("2")]
    token = state["creds"]["key" if example.spec == "v1" else "admin"]
    url = url_for(state, example, Recipe())
    status, body, headers = send(
        state["server"],
        example.method.upper(),
        url,
        token,
        example.value,
        content_type=example.media_type,
    )
    # PUT /opt_outs: 201 made the entry, 200 found it (the second example, same number).
    assert str(status) in successes, body
    success = str(status)
    assert not header_problems(example.spec, example.path, example.method, success, headers)
    schema_ref = f"#/paths/{example.path.replace('/', '~1')}/{example.method}/responses/{success}"
    content = op["responses"][success]["content"]
    media = next(iter(content))
    assert not errors(
        example.spec, f"{schema_ref}/content/{media.replace('/', '~1')}/schema", body, request=False
    )
    stored = body["data"] if example.spec == "v1" else body.get("data", body)
    if (example.spec, example.method, example.path) in ANSWERS_NOT_ECHOES:
        return
    for field, value in example.value.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "attestation"}
            assert value.items() <= stored[field].items(), (field, stored[field])
        else:
            assert stored[field] == value, (field, stored[field])


#: Operations whose answer is not the request taken into effect (a decision, a report's
#: answer, a preview): their response recipes check the answer instead.
ANSWERS_NOT_ECHOES = {
    ("v1", "post", "/inbound_messages"),
    ("v1", "post", SD),
    ("v1", "post", MCALL),
    ("dashboard", "post", PREVIEW),
}


#: A valid body per write operation (its first documented request example), for recipes that
#: need the request to get past body validation (the dashboard checks 400 before 403 and 404).
REQUEST_BODIES = {}
for _ex in reversed(REQUEST_EXAMPLES):
    REQUEST_BODIES[_ex.spec, _ex.method, _ex.path] = _ex.value


def recipe_for(example: Example) -> Recipe | None:
    """The recipe that reproduces a response example, if there is one."""
    return lookup(RECIPES, example.spec, example.method, example.path, example.status, example.name)


REPLAYABLE = [ex for ex in RESPONSE_EXAMPLES if recipe_for(ex) and not recipe_for(ex).stall]
STALLED = [ex for ex in RESPONSE_EXAMPLES if recipe_for(ex) and recipe_for(ex).stall]


@pytest.mark.parametrize("example", REPLAYABLE, ids=lambda ex: ex.id)
def test_response_example_is_reproduced(state: dict[str, Any], example: Example) -> None:
    """The recipe gets the documented status and a body valid for the documented schema."""
    recipe = recipe_for(example)
    token = credential(state, example.spec, recipe)
    url = url_for(state, example, recipe)
    if recipe.setup is not NO_BODY:
        assert send(state["server"], example.method.upper(), url, token, recipe.setup)[0] == 200
    body = recipe.body
    if body is NO_BODY and recipe.raw is None and example.method in ("put", "patch", "post"):
        body = REQUEST_BODIES[example.spec, example.method, example.path]
    status, body, headers = send(
        state["server"],
        recipe.method or example.method.upper(),
        url,
        token,
        body,
        raw=recipe.raw,
        content_type=recipe.content_type,
        headers=recipe.headers,
    )
    assert status == int(example.status), body
    problems = errors(example.spec, example.schema_ref, body, request=False)
    assert not problems, (problems, body)
    problems = header_problems(example.spec, example.path, example.method, example.status, headers)
    assert not problems, problems
    if recipe.exact:
        assert without_request_id(body) == without_request_id(example.value)
    elif example.status.startswith("4") and example.spec == "v1":
        assert body["error"]["code"] == example.value["error"]["code"]


def header_problems(spec: str, path: str, method: str, status: str, headers: Message) -> list[str]:
    """What is wrong with a response's headers: each header the documented response marks
    required must be present and valid for its schema (integers are parsed first)."""
    doc = load(spec)
    response_ref = pointer("paths", path, method, "responses", status)
    response, response_ref = follow(
        doc, doc["paths"][path][method]["responses"][status], response_ref
    )
    problems = []
    for name, header in response.get("headers", {}).items():
        header, header_ref = follow(doc, header, f"{response_ref}/headers/{pointer(name)[2:]}")
        value: Any = headers.get(name)
        if value is None:
            if header.get("required"):
                problems.append(f"{name}: missing")
            continue
        if header["schema"].get("type") == "integer":
            value = int(value) if value.isdigit() else value
        problems += [
            f"{name}: {p}" for p in errors(spec, f"{header_ref}/schema", value, request=False)
        ]
    return problems


#: Every GET operation, for the HEAD test: (spec, path).
GETS = [
    (name, path) for name in SPECS for path, method, _ in operations(load(name)) if method == "get"
]


@pytest.mark.parametrize(("spec", "path"), GETS, ids=[f"{s} HEAD {p}" for s, p in GETS])
def test_head_answers_like_get_without_a_body(state: dict[str, Any], spec: str, path: str) -> None:
    """HEAD gets the GET's status and documented headers, and no body (as both specs say)."""
    recipe = Recipe(auth="key" if spec == "v1" else "admin", phone=BY_KEYWORD)
    example = Example(spec, path, "get", "200", "application/json", "", None, "")
    url = url_for(state, example, recipe)
    token = credential(state, spec, recipe)
    status, _, get_headers = send(state["server"], "GET", url, token)
    request = urllib.request.Request(state["server"].base_url + url, method="HEAD")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert (response.status, response.read()) == (status, b"")
        assert not header_problems(spec, path, "get", str(status), response.headers)
        same = ("Content-Type", "Content-Length", "ETag", "Cache-Control", "X-Content-Type-Options")
        assert [response.headers.get(h) for h in same] == [get_headers.get(h) for h in same]


def stalled_upload(state: dict[str, Any], example: Example) -> tuple[int, Any]:
    """Declare a 100-byte body, send one byte, wait for the server's answer."""
    recipe = recipe_for(example)
    connection = http.client.HTTPConnection(state["server"].base_url.removeprefix("http://"))
    connection.timeout = 30
    connection.putrequest(example.method.upper(), url_for(state, example, recipe))
    connection.putheader("Authorization", f"Bearer {credential(state, example.spec, recipe)}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", "100")
    connection.endheaders(b"{")
    response = connection.getresponse()
    try:
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_stalled_upload_examples_are_reproduced(state: dict[str, Any]) -> None:
    """Every documented 408 comes back for a stalled upload (all at once: each waits 10 s)."""
    assert STALLED, "no 408 examples found"
    with ThreadPoolExecutor(len(STALLED)) as pool:
        answers = list(pool.map(lambda ex: stalled_upload(state, ex), STALLED))
    for example, (status, body) in zip(STALLED, answers, strict=True):
        assert status == int(example.status), (example.id, body)
        assert not errors(example.spec, example.schema_ref, body, request=False), example.id
        assert without_request_id(body) == without_request_id(example.value), example.id
