"""Rate limits: failed authentications per client address, and the optional per-key limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from conftest import bearer
from handlers.app import create_app
from handlers.config import Config

WRONG_KEY = "am_live_" + "W" * 40


def limited(config: Config, **limits: int) -> Config:
    """The test config with other rate limits."""
    return Config(**{**config.__dict__, **limits})


#: The header ``from_addresses`` takes a request's client address from (tests only).
ADDRESS_HEADER = "X-Test-Client-Address"


def from_addresses(app: Any) -> Any:
    """The app, seeing each request from the address in ADDRESS_HEADER when there is one: one
    test client (one event loop, where the app's store lives) speaks for several addresses."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        address = dict(scope.get("headers", [])).get(ADDRESS_HEADER.lower().encode())
        if address is not None:
            scope = {**scope, "client": (address.decode(), 5000)}
        await app(scope, receive, send)

    return asgi


class FromAddress:
    """A test client's requests, sent from another address (see ``from_addresses``)."""

    def __init__(self, client: TestClient, address: str) -> None:
        self.client = client
        self.address = address

    def get(self, url: str, headers: dict[str, str]) -> Any:
        """GET ``url`` from this address."""
        return self.client.get(url, headers={**headers, ADDRESS_HEADER: self.address})


@pytest.fixture
def guarded(config: Config) -> Iterator[tuple[TestClient, FromAddress]]:
    """An app allowing 5 failed authentications a minute; clients from two addresses."""
    app = create_app(limited(config, auth_failures_per_minute=5))
    with TestClient(from_addresses(app), client=("203.0.113.7", 5000)) as guesser:
        yield guesser, FromAddress(guesser, "203.0.113.8")


def test_past_the_failed_auth_limit_every_request_is_429(guarded, org, admin_key, auth) -> None:
    """Five wrong keys, then even a right key and a right token get 429 from that address."""
    guesser, _ = guarded
    for _ in range(5):
        assert guesser.get("/v1/organization", headers=bearer(WRONG_KEY)).status_code == 401
    v1 = guesser.get("/v1/organization", headers=bearer(admin_key))
    assert v1.status_code == 429
    assert 1 <= int(v1.headers["Retry-After"]) <= 60
    assert v1.json()["error"]["code"] == "RATE_LIMITED"
    assert v1.json()["error"]["request_id"] == v1.headers["x-request-id"]
    dashboard = guesser.get(
        f"/api/organizations/{org['id']}/contact-protection-settings",
        headers=auth("ADMIN", org["id"]),
    )
    assert dashboard.status_code == 429
    assert dashboard.json() == {
        "error": "Too many requests",
        "details": "too many failed authentications from this address",
    }


def test_failures_from_one_address_do_not_limit_another(guarded, admin_key) -> None:
    """A bystander's valid request is answered while the guesser is refused."""
    guesser, bystander = guarded
    for _ in range(6):
        guesser.get("/v1/organization", headers=bearer(WRONG_KEY))
    assert guesser.get("/v1/organization", headers=bearer(admin_key)).status_code == 429
    assert bystander.get("/v1/organization", headers=bearer(admin_key)).status_code == 200


def test_successes_do_not_count_towards_the_limit(guarded, admin_key) -> None:
    """Only refused credentials count: many good requests never reach 429."""
    guesser, _ = guarded
    for _ in range(20):
        assert guesser.get("/v1/organization", headers=bearer(admin_key)).status_code == 200


def test_zero_turns_the_failed_auth_limit_off(config, admin_key) -> None:
    """auth_failures_per_minute=0: forty wrong keys are forty 401s."""
    with create_app(limited(config, auth_failures_per_minute=0)).test_client() as client:
        statuses = {
            client.get("/v1/organization", headers=bearer(WRONG_KEY)).status_code for _ in range(40)
        }
    assert statuses == {401}


def test_the_per_key_limit_counts_down_in_headers_then_refuses(config, admin_key) -> None:
    """With 3 requests a minute per key: RateLimit-* headers count down, then 429."""
    app = create_app(limited(config, key_requests_per_minute=3))
    with app.test_client() as client:
        answers = [client.get("/v1/organization", headers=bearer(admin_key)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["RateLimit-Limit"] for a in answers} == {"3"}
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert answers[3].json()["error"]["code"] == "RATE_LIMITED"


def test_no_rate_limit_headers_when_the_per_key_limit_is_off(client, admin_key) -> None:
    """Off by default: no RateLimit-* headers."""
    response = client.get("/v1/organization", headers=bearer(admin_key))
    assert not [name for name in response.headers if name.lower().startswith("ratelimit")]
