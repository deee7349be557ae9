"""Hostile input on both surfaces: each refused in the surface's own 4xx shape, nothing written.

The in-process client covers everything an HTTP client library will send; raw sockets against a
live server cover what no client library will (stalled bodies, CR/LF in headers, dot segments).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import JWT_SECRET, OPERATOR, bearer, http_scope, new_database, sync_store
from handlers.auth.api_keys import mint_key
from handlers.auth.jwt import issue_token
from handlers.config import Config
from live import cli, start_server
from reliability import port_of, raw_exchange, record, split_response

SECRET_ENV = {"ORGSETTINGS_JWT_SECRET": "hostile-test-secret-" + "h" * 32}
ULID_LENGTH = 26
TRIED: list[str] = []  # every hostile input sent, for the figures

# (case, body template): "S" is replaced by a string field, "N" by an integer field.
BODIES: list[tuple[str, bytes]] = [
    ("malformed", b'{"S": '),
    ("truncated", b'{"S": "Acme"'),
    ("trailing garbage", b'{"S": "Acme"} x'),
    ("array", b'["S"]'),
    ("string", b'"S"'),
    ("number", b"42"),
    ("null", b"null"),
    ("duplicate keys", b'{"S": "Acme", "S": "Evil"}'),
    ("nested 100000 [", b"[" * 100_000),
    ("nested 900 [ in a field", b'{"S": ' + b"[" * 900 + b"]" * 900 + b"}"),
    ("nested 5000 [ in a field", b'{"S": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("1e400", b'{"N": 1e400}'),
    ("-1e400", b'{"N": -1e400}'),
    ("2**70", b'{"N": %d}' % 2**70),
    # Past Python's int-from-string limit (4300 digits): the parser refuses, never a 500.
    ("a 4301-digit integer", b'{"N": ' + b"7" * 4301 + b"}"),
    ("NaN", b'{"N": NaN}'),
    ("Infinity", b'{"N": Infinity}'),
    ("-Infinity", b'{"N": -Infinity}'),
    ("invalid UTF-8", b'{"S": "\xff\xfe\xc3"}'),
    ("overlong UTF-8", b'{"S": "\xc0\xaf"}'),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"S": "Acme"}'),
    ("escaped NUL", b'{"S": "Acme\\u0000Evil"}'),
    ("raw NUL", b'{"S": "Acme\x00Evil"}'),
    ("NUL in a field name", b'{"S\\u0000": "Acme"}'),
    ("lone surrogate", b'{"S": "\\ud800"}'),
    ("empty body", b""),
    ("whitespace body", b" \r\n\t "),
    ("a million characters", json.dumps({"S": "a" * 1_000_000}).encode()),
    ("just over 64 KiB", b'{"S": "' + b"a" * (64 * 1024 - 7) + b'"}'),
]
#: Expected status per case on (v1, dashboard); anything not listed is 400 on both... except v1
#: answers schema problems (well-formed JSON of the wrong shape) with 422 VALIDATION_FAILED.
TOO_LARGE = {"nested 100000 [", "a million characters", "just over 64 KiB"}
V1_SCHEMA = {"array", "string", "number", "null", "2**70", "escaped NUL", "NUL in a field name"}
V1_SCHEMA |= {"lone surrogate", "nested 900 [ in a field"}

TARGETS = {
    # surface: (method, path template, credential, string field, integer field)
    "v1": ("PATCH", "/v1/organization", "key", "name", "message_retention_days"),
    "contact": (
        "PUT",
        "/api/organizations/{org}/contact-protection-settings",
        "token",
        "contactProtectionPeriod",
        "contactProtectionPeriod",
    ),
    "missed": (
        "PUT",
        "/api/organizations/{org}/missed-call-message",
        "token",
        "missedCallMessage",
        "missedCallMessage",
    ),
}


#: On the missed-call PUT a field whose name holds a NUL is an unknown field, ignored like any
#: other (the dashboard's additionalProperties: true): with no known field the PUT is a no-op.
IGNORED_ON_MISSED = {"NUL in a field name"}


def expected_status(surface: str, case: str) -> int:
    """The status a hostile body gets on a surface."""
    if case in TOO_LARGE:
        return 413
    if surface == "missed" and case in IGNORED_ON_MISSED:
        return 200
    if surface == "v1" and case in V1_SCHEMA:
        return 422
    return 400


# Module-scoped: no request here may write anything (each test checks), so they can share one
# app and database, which keeps a few hundred cases to a few seconds.


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One app over one database for the module: org, full-scope key, ADMIN token, client."""
    from handlers.app import create_app

    config = Config(
        database=new_database(tmp_path_factory.mktemp("hostile-app"), "app.db"),
        jwt_secret=JWT_SECRET,
        log_requests=False,
    )
    app = create_app(config)
    store = sync_store(config.database)
    org = store.create_org(name="Acme Health", actor=OPERATOR)
    secret, prefix, key_hash = mint_key()
    scopes = ["org:read", "org:admin:write", "audit:read"]
    store.create_key(
        org_id=org["id"], key_hash=key_hash, prefix=prefix, scopes=scopes, actor=OPERATOR
    )
    token = issue_token(config, org_id=org["id"], role="ADMIN", sub="hostile-user")["token"]
    with app.test_client() as test_client:
        yield {
            "app": app,
            "client": test_client,
            "store": store,
            "org": org,
            "creds": {"key": secret, "token": token},
            "config": config,
        }
    store.close()


@pytest.fixture
def client(shared):
    """The module's test client."""
    return shared["client"]


@pytest.fixture
def store(shared):
    """The module's store."""
    return shared["store"]


@pytest.fixture
def org(shared):
    """The module's organization."""
    return shared["org"]


@pytest.fixture
def creds(shared) -> dict[str, str]:
    """A full-scope key and an ADMIN token for the module's organization."""
    return shared["creds"]


def snapshot(store, org_id: str) -> tuple[int, int]:
    """The org's version and its number of audit events: both must not move."""
    events, _ = store.list_events(org_id, limit=100)
    return store.get_org(org_id)["version"], len(events)


def assert_surface_error(surface: str, status: int, headers: Any, body: Any) -> None:
    """The body is the surface's own error shape (never Connexion's, never a 5xx)."""
    assert 400 <= status < 500, (status, body)
    if surface == "v1":
        assert body["success"] is False
        assert set(body["error"]) <= {"code", "message", "details", "request_id"}
        assert body["error"]["request_id"] == headers["x-request-id"]
    else:
        assert set(body) == {"error", "details"}, body
        assert isinstance(body["error"], str) and isinstance(body["details"], str)


@pytest.mark.parametrize("surface", TARGETS)
@pytest.mark.parametrize(("case", "template"), BODIES, ids=[c for c, _ in BODIES])
def test_hostile_bodies(client, store, org, creds, surface, case, template) -> None:
    """Each hostile body is refused in the surface's shape and changes nothing."""
    method, path, cred, text_field, int_field = TARGETS[surface]
    body = template.replace(b'"S', f'"{text_field}'.encode()).replace(
        b'"N"', f'"{int_field}"'.encode()
    )
    before = snapshot(store, org["id"])
    response = client.request(
        method,
        path.format(org=org["id"]),
        content=body,
        headers={**bearer(creds[cred]), "Content-Type": "application/json"},
    )
    TRIED.append(f"{surface}:{case}")
    assert response.status_code == expected_status(surface, case), response.text[:300]
    if response.status_code != 200:
        assert_surface_error(surface, response.status_code, response.headers, response.json())
    assert snapshot(store, org["id"]) == before


CONTENT_TYPES = [
    ("text/plain", 415),
    ("application/x-www-form-urlencoded", 415),
    ("multipart/form-data; boundary=x", 415),
    ("application/xml", 415),
    ("application/json-seq", 415),
    (None, 415),
]


@pytest.mark.parametrize("surface", TARGETS)
@pytest.mark.parametrize(("content_type", "status"), CONTENT_TYPES)
def test_wrong_and_missing_content_types(
    client, store, org, creds, surface, content_type, status
) -> None:
    """A body that is not declared JSON is 415 in the surface's shape, and changes nothing."""
    method, path, cred, text_field, _ = TARGETS[surface]
    headers = bearer(creds[cred])
    if content_type:
        headers["Content-Type"] = content_type
    before = snapshot(store, org["id"])
    response = client.request(
        method,
        path.format(org=org["id"]),
        content=json.dumps({text_field: "Acme"}).encode(),
        headers=headers,
    )
    TRIED.append(f"{surface}:content-type {content_type}")
    assert response.status_code == status, response.text[:300]
    assert_surface_error(surface, response.status_code, response.headers, response.json())
    assert snapshot(store, org["id"]) == before


QUERIES = [
    ("v1", "PATCH", "/v1/organization?debug=1", 422),
    ("v1", "PATCH", "/v1/organization?name=Evil", 422),
    ("v1", "GET", "/v1/audit_events?limit=abc", 422),
    ("v1", "GET", "/v1/audit_events?limit=1e400", 422),
    ("v1", "GET", "/v1/audit_events?limit=99999999999999999999999", 422),
    ("v1", "GET", "/v1/audit_events?limit=-1", 422),
    ("v1", "GET", "/v1/audit_events?cursor=%00%ff", 422),
    ("v1", "GET", "/v1/audit_events?cursor=" + "A" * 5000, 422),
    ("v1", "GET", "/v1/audit_events?order=asc", 422),
    ("contact", "PUT", "/api/organizations/{org}/contact-protection-settings?x=1", 400),
    ("missed", "GET", "/api/organizations/{org}/missed-call-message?debug=true", 400),
    ("contact", "GET", "/api/organizations/" + "a" * 5000 + "/contact-protection-settings", 400),
    ("missed", "GET", "/api/organizations/%00/missed-call-message", 403),
    ("missed", "GET", "/api/organizations/..%2F..%2Fetc/missed-call-message", 404),
    ("contact", "GET", "/api/organizations/..%2F..%2Fetc/contact-protection-settings", 404),
]


@pytest.mark.parametrize(("surface", "method", "path", "status"), QUERIES)
def test_unexpected_query_parameters_and_hostile_paths(
    client, store, org, creds, surface, method, path, status
) -> None:
    """Unknown query parameters, bad bounds, traversal and overlong ids: 4xx, nothing written."""
    _, _, cred, text_field, _ = TARGETS[surface]
    before = snapshot(store, org["id"])
    body = {text_field: 5} if surface == "contact" else {text_field: "Acme"}
    response = client.request(
        method,
        path.format(org=org["id"]),
        json=body if method != "GET" else None,
        headers=bearer(creds[cred]),
    )
    TRIED.append(f"{surface}:{method} {path[:80]}")
    assert response.status_code == status, response.text[:300]
    assert_surface_error(surface, response.status_code, response.headers, response.json())
    assert snapshot(store, org["id"]) == before


def asgi_get(
    client, app, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, str]]:
    """Drive the ASGI app directly, with header bytes no HTTP client library would send, on
    the loop of the test client that started it (its store lives there)."""
    scope = http_scope("GET", path, headers)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    client.portal.call(app, scope, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode("latin-1") for k, v in start["headers"]}


@pytest.mark.parametrize(
    "request_id",
    [b"abc\r\nX-Evil: 1", b"abc\rdef", b"abc\ndef", b"abc\x00def", b"\xff\xfe", b"a" * 65, b""],
)
def test_a_hostile_request_id_is_replaced_by_a_ulid(shared, request_id) -> None:
    """CR/LF, NUL, non-ASCII or overlong X-Request-Id is never echoed: a ULID is made instead."""
    headers = [
        (b"authorization", f"Bearer {shared['creds']['key']}".encode()),
        (b"x-request-id", request_id),
    ]
    status, answer = asgi_get(shared["client"], shared["app"], "/v1/organization", headers)
    TRIED.append(f"x-request-id {request_id[:20]!r}")
    assert status == 200
    assert len(answer["x-request-id"]) == ULID_LENGTH
    assert not request_id or request_id not in answer["x-request-id"].encode()
    assert "x-evil" not in answer


def test_a_stalled_body_is_408_in_process(tmp_path: Path) -> None:
    """A body that stops arriving is answered 408 in the v1 shape once the read timeout passes."""
    from handlers.app import create_app

    app = create_app(
        Config(
            database=new_database(tmp_path, "stall.db"),
            jwt_secret=JWT_SECRET,
            log_requests=False,
            body_timeout_seconds=0.2,
        )
    )
    scope = http_scope(
        "PATCH",
        "/v1/organization",
        [(b"content-type", b"application/json"), (b"content-length", b"100")],
    )
    sent: list[dict] = []
    pieces = [{"type": "http.request", "body": b'{"name": "a', "more_body": True}]

    async def receive() -> dict:
        if pieces:
            return pieces.pop()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    TRIED.append("stalled body (in-process)")
    assert time.monotonic() - started < 3
    assert sent[0]["status"] in (401, 408)  # security runs first: no key was sent


# -- a live server and raw sockets ----------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server over a fresh database with one org, a full-scope key and an ADMIN token."""
    db: Path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    cli(db, "init", env=SECRET_ENV)
    org = cli(db, "org", "create", "--name", "Hostile Org", env=SECRET_ENV)
    scopes = ("--scope", "org:read", "--scope", "org:admin:write", "--scope", "audit:read")
    key = cli(db, "key", "create", "--org", org["id"], *scopes, env=SECRET_ENV)["key"]
    token = cli(
        db, "token", "create", "--org", org["id"], "--role", "ADMIN", "--sub", "u", env=SECRET_ENV
    )["token"]
    server = start_server(db, env=SECRET_ENV)
    yield {"server": server, "org": org["id"], "key": key, "token": token, "db": db}
    server.stop()


def http(method: str, path: str, token: str, extra: bytes = b"", body: bytes = b"") -> bytes:
    """A raw HTTP/1.1 request, bytes exactly as given."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    return head.encode() + extra + b"Connection: close\r\n\r\n" + body


def version_and_events(live: dict[str, Any]) -> tuple[int, int]:
    """The org's version and audit event count, read over the v1 surface."""
    port = port_of(live["server"].base_url)
    _, headers, _ = split_response(raw_exchange(port, http("GET", "/v1/organization", live["key"])))
    _, _, events = split_response(
        raw_exchange(port, http("GET", "/v1/audit_events?limit=100", live["key"]))
    )
    return int(headers["etag"].strip('"')), len(events["data"])


def test_slow_and_lying_content_length_never_hang_or_5xx(live: dict[str, Any]) -> None:
    """Declared 100 bytes, sent 10: closing gets nothing written; stalling gets 408 and a close."""
    port, org = port_of(live["server"].base_url), live["org"]
    before = version_and_events(live)
    partial = b'{"name": "'
    declared = b"Content-Type: application/json\r\nContent-Length: 100\r\n"
    stalls = {
        "v1": http("PATCH", "/v1/organization", live["key"], declared, partial),
        "dashboard": http(
            "PUT", f"/api/organizations/{org}/missed-call-message", live["token"], declared, partial
        ),
    }
    answers: dict[str, tuple[float, bytes]] = {}

    def stall(name: str) -> None:
        started = time.monotonic()
        answers[name] = (time.monotonic() - started, raw_exchange(port, stalls[name], timeout=30))
        answers[name] = (time.monotonic() - started, answers[name][1])

    threads = [threading.Thread(target=stall, args=(name,)) for name in stalls]
    for thread in threads:
        thread.start()
    # Meanwhile: the same lie, but the client gives up and closes its side.
    for name, data in stalls.items():
        reply = raw_exchange(port, data, timeout=15, half_close=True)
        TRIED.append(f"lying content-length then close ({name})")
        if reply:
            status, _, _ = split_response(reply)
            assert 400 <= status < 500
    # ... and a body longer than its Content-Length (the rest is a second, broken request).
    reply = raw_exchange(
        port,
        http(
            "PATCH",
            "/v1/organization",
            live["key"],
            b"Content-Type: application/json\r\nContent-Length: 5\r\n",
            b'{"name": "Evil"}',
        ),
    )
    TRIED.append("body longer than content-length")
    assert 400 <= split_response(reply)[0] < 500
    for thread in threads:
        thread.join(40)
    for name, (took, reply) in answers.items():
        TRIED.append(f"stalled body ({name})")
        status, headers, body = split_response(reply)
        assert status == 408, reply[:300]
        assert_surface_error("v1" if name == "v1" else "dashboard", status, headers, body)
        assert headers.get("connection") == "close"
        assert took < 20
    assert version_and_events(live) == before
    assert '"levelname": "ERROR"' not in live["server"].log()


TRAVERSALS = [
    ("GET", "/api/organizations/..%2F..%2Fetc/contact-protection-settings", "token"),
    ("GET", "/api/organizations/../../etc/passwd", "token"),
    ("GET", "/v1/../api/organizations/{org}/contact-protection-settings", "token"),
    ("PUT", "/v1/../api/organizations/{org}/contact-protection-settings", "token"),
    ("GET", "/v1/%2e%2e/api/organizations/{org}/missed-call-message", "token"),
    ("GET", "/api/organizations/{org}/../{org}/missed-call-message", "token"),
    ("PATCH", "/v1/organization/../organization", "key"),
    ("GET", "/v1/organization%00", "key"),
    # Overlong, yet inside the server's bounded request head (a head over 32 KiB may be 431).
    ("GET", "/api/organizations/" + "9" * 20_000 + "/missed-call-message", "token"),
]


@pytest.mark.parametrize(("method", "path", "cred"), TRAVERSALS)
def test_path_traversal_over_the_wire(live: dict[str, Any], method: str, path: str, cred) -> None:
    """Dot segments and overlong ids, sent verbatim: a 4xx in the shape of the path's surface."""
    port = port_of(live["server"].base_url)
    before = version_and_events(live)
    body = b'{"contactProtectionPeriod": 700}'
    extra = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    raw = http(method, path.format(org=live["org"]), live[cred], extra, body)
    TRIED.append(f"path {path[:60]}")
    status, headers, answer = split_response(raw_exchange(port, raw))
    assert 400 <= status < 500, answer
    if path.startswith("/api/"):
        assert_surface_error("dashboard", status, headers, answer)
    elif path.startswith("/v1/"):
        assert_surface_error("v1", status, headers, answer)
    assert version_and_events(live) == before


@pytest.mark.parametrize(
    "header",
    [b"X-Request-Id: abc\r\nX-Evil: injected\r\n", b"X-Request-Id: abc\rX-Evil: 1\r\n"],
)
def test_cr_lf_in_request_id_is_never_echoed(live: dict[str, Any], header: bytes) -> None:
    """CR/LF in X-Request-Id never reaches a response header (split, or refused as framing)."""
    port = port_of(live["server"].base_url)
    reply = raw_exchange(port, http("GET", "/v1/organization", live["key"], header))
    TRIED.append(f"raw x-request-id {header!r}")
    status, headers, _ = split_response(reply)
    assert status < 500
    assert b"evil" not in reply.split(b"\r\n\r\n")[0].lower()
    if status == 200:
        assert headers["x-request-id"] == "abc"  # the CR/LF ended the header: "abc" is valid


FRAMING = [
    ("bare CR in a header", http("GET", "/v1/organization", "k", b"X-Request-Id: abc\rdef\r\n")),
    ("bare LF in a header", http("GET", "/v1/organization", "k", b"X-Request-Id: abc\ndef\r\n")),
    ("NUL in a header", http("GET", "/v1/organization", "k", b"X-Request-Id: a\x00b\r\n")),
    ("request line over 64 KiB", http("GET", "/api/organizations/" + "9" * 70_000, "k")),
    (
        "non-numeric Content-Length",
        http("PATCH", "/v1/organization", "k", b"Content-Length: x\r\n"),
    ),
    (
        "two Content-Lengths",
        http("PUT", "/api", "k", b"Content-Length: 1\r\nContent-Length: 2\r\n"),
    ),
]


@pytest.mark.parametrize(("case", "raw"), FRAMING, ids=[c for c, _ in FRAMING])
def test_broken_http_framing_is_refused_by_the_server(live: dict[str, Any], case, raw) -> None:
    """Bytes that are not HTTP never reach the app: the server's own 400 (431 for a request
    head over the server's bound) and a closed connection.

    These are refused by the HTTP parser before any surface is known, so the body is the
    server's plain text, not a surface's JSON; nothing is echoed and nothing is logged as an
    error.
    """
    reply = raw_exchange(port_of(live["server"].base_url), raw)
    TRIED.append(f"framing: {case}")
    status, headers, _ = split_response(reply)
    assert status == (431 if case == "request line over 64 KiB" else 400)
    assert headers.get("connection") == "close"
    assert b"abc" not in reply and b"x-request-id" not in reply.lower()


def test_record_hostile_figures() -> None:
    """Store how many hostile inputs this module tried (runs last in the module)."""
    record("hostile_input", hostile_inputs=len(TRIED), requests_sent=len(TRIED), writes_lost=0)
    assert len(TRIED) > 100
