"""``orgsettings serve --workers 2``: the metrics are the instance's totals and the
failed-authentication limit holds for the instance, whichever worker a connection reaches.

Which worker serves a connection is read from /proc (the worker holding the server's end of
it), so each test knows both workers took part. A request is accounted just after its answer
is sent, so a test waits for the figures it expects with a bounded poll, then checks they stay.
"""

from __future__ import annotations

import http.client
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import new_database
from live import Server, cli, full_key, start_server, worker_of

SECRET_ENV = {
    "ORGSETTINGS_JWT_SECRET": "workers-test-secret-" + "w" * 32,
    "ORGSETTINGS_LOG_REQUESTS": "0",
}
WRONG_KEY = "am_live_" + "W" * 40
#: Connections a test may open to find both workers serving before it gives up.
MAX_CONNECTIONS = 400
#: The bound on every wait for figures to arrive (a loaded machine included).
WAIT_SECONDS = 30.0
FAILURE_LIMIT = 6


class Instance:
    """A running two-worker server, its database and a full-scope key."""

    def __init__(self, server: Server, key: str, tmp: Path) -> None:
        self.server, self.key, self.tmp = server, key, tmp
        self.host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)

    def request(self, path: str, key: str | None = None) -> tuple[int, bytes, int | None]:
        """One request on a fresh connection: status, body and the pid of the worker that
        answered it."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert conn.sock is not None
            return response.status, body, worker_of(conn.sock, self.server.workers())
        finally:
            conn.close()

    def count(self, operation: str, status: str) -> tuple[float, int | None]:
        """``orgsettings_requests_total`` of ``operation`` and ``status`` in one scrape, and the
        worker that answered it."""
        code, body, pid = self.request("/metrics")
        assert code == 200, body
        total = sum(
            sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == "orgsettings_requests_total"
            and sample.labels["operation"] == operation
            and sample.labels["status"] == status
        )
        return total, pid


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Instance]]:
    """Starts ``serve --workers 2`` over a fresh database with an organization (extra
    environment as keywords); stops it after the test, and checks that serve removed the
    private directory it made for its workers."""
    started: list[Server] = []

    def run(**extra_env: str) -> Instance:
        env = {**SECRET_ENV, **extra_env, "TMPDIR": str(tmp_path)}
        db = new_database(tmp_path)
        cli(db, "init", env=env)
        org = cli(db, "org", "create", "--name", "Workers Org", env=env)["id"]
        key = full_key(db, org, env=env)["key"]
        server = start_server(db, workers=2, env=env, log_path=tmp_path / "server.log")
        started.append(server)
        assert len(server.workers()) == 2
        return Instance(server, key, tmp_path)

    yield run
    for server in started:
        assert server.stop() == 0, server.log()[-3000:]
    assert list(tmp_path.glob("orgsettings-serve-*")) == []


@pytest.fixture
def instance(start: Callable[..., Instance]) -> Instance:
    """A two-worker instance with the default limits."""
    return start()


def both_workers_serve(instance: Instance, send: Callable[[], int | None], at_least: int) -> int:
    """Call ``send`` (one request on a fresh connection, returning the worker that answered)
    until each worker has answered at least ``at_least``; how many were sent."""
    served: Counter[int | None] = Counter()
    for sent in range(1, MAX_CONNECTIONS + 1):
        served[send()] += 1
        if (
            len(served - Counter({None: served[None]})) == 2
            and min(served[pid] for pid in served if pid is not None) >= at_least
        ):
            return sent
    raise AssertionError(f"one worker took every connection: {dict(served)}")


def wait_for_count(instance: Instance, operation: str, status: str, expected: float) -> None:
    """Scrape until the count reaches ``expected`` (never passing it) within WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        total, _ = instance.count(operation, status)
        assert total <= expected
        if total == expected:
            return
        assert time.monotonic() < deadline, f"{total} of {expected} counted"
        time.sleep(0.05)


def get_organization(instance: Instance) -> Callable[[], int | None]:
    """A sender: GET /v1/organization with the instance's key."""

    def send() -> int | None:
        status, body, pid = instance.request("/v1/organization", instance.key)
        assert status == 200, body
        return pid

    return send


def test_metrics_are_the_instance_totals_whichever_worker_answers(instance: Instance) -> None:
    """K GETs served by both workers: every scrape, answered by either worker, counts K."""
    sent = both_workers_serve(instance, get_organization(instance), at_least=5)
    wait_for_count(instance, "get_organization", "200", sent)

    def scrape() -> int | None:
        total, pid = instance.count("get_organization", "200")
        assert total == sent
        return pid

    both_workers_serve(instance, scrape, at_least=2)


def test_a_worker_restart_neither_loses_nor_double_counts(instance: Instance) -> None:
    """SIGHUP makes Granian replace both workers: what the old ones counted stays in the
    totals, once, and the new ones add theirs."""
    before = both_workers_serve(instance, get_organization(instance), at_least=2)
    wait_for_count(instance, "get_organization", "200", before)
    old = set(instance.server.workers())
    instance.server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (len(now := instance.server.workers()) == 2 and not old & set(now)):
        assert time.monotonic() < deadline, "the workers were not replaced"
        time.sleep(0.05)
    after = both_workers_serve(instance, get_organization(instance), at_least=2)
    wait_for_count(instance, "get_organization", "200", before + after)


def test_failed_authentications_add_up_over_the_workers(start: Callable[..., Instance]) -> None:
    """Wrong keys spread evenly over both workers: 429 once the instance has seen the limit,
    though no worker has seen it alone."""
    instance = start(ORGSETTINGS_AUTH_FAILURES_PER_MINUTE=str(FAILURE_LIMIT))
    conns: dict[int, http.client.HTTPConnection] = {}
    try:
        for _ in range(MAX_CONNECTIONS):  # one kept-alive connection to each worker
            conn = http.client.HTTPConnection(instance.host, instance.port, timeout=30)
            assert fetch(conn, "/healthz", None)[0] == 200
            assert conn.sock is not None
            pid = worker_of(conn.sock, instance.server.workers())
            if pid is None or pid in conns:
                conn.close()
                continue
            conns[pid] = conn
            if len(conns) == 2:
                break
        assert len(conns) == 2, "one worker took every connection"
        first, second = conns.values()
        for n in range(FAILURE_LIMIT):
            assert fetch(first if n % 2 else second, "/v1/organization", WRONG_KEY)[0] == 401
        # The last failure is counted just after its answer: wait (on a third connection,
        # asking nothing of authentication) until this address is refused.
        deadline = time.monotonic() + WAIT_SECONDS
        while instance.request("/healthz")[0] != 429:
            assert time.monotonic() < deadline, "the limit was never reached"
            time.sleep(0.05)
        for conn in (first, second):
            status, headers, _ = fetch(conn, "/v1/organization", instance.key)
            assert status == 429
            assert 1 <= int(headers["retry-after"]) <= 60
    finally:
        for conn in conns.values():
            conn.close()


def fetch(
    conn: http.client.HTTPConnection, path: str, key: str | None
) -> tuple[int, dict[str, str], Any]:
    """GET ``path`` on a kept-alive connection: status, lower-cased headers, body."""
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
    response = conn.getresponse()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body
