"""Three ``orgsettings serve`` processes (one worker each) over one PostgreSQL database.

What a deployment behind a load balancer relies on: writes spread over the instances all land
once each (version and audit trail agree exactly), one ``If-Match`` raced through every
instance lets exactly one writer win, a key revoked through the CLI stops working on every
instance within a second, and SIGKILLing one instance under load neither stops the others nor
loses a write any instance acknowledged.
"""

from __future__ import annotations

import http.client
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import reliability
from conftest import new_database
from live import Server, cli, full_key, start_server

pytestmark = pytest.mark.postgresql_only

INSTANCES = 3
ENV_BASE = {
    "ORGSETTINGS_JWT_SECRET": "multi-instance-test-secret-" + "m" * 40,
    "ORGSETTINGS_LOG_REQUESTS": "0",
    "ORGSETTINGS_AUTH_FAILURES_PER_MINUTE": "0",
}
WRITERS = 8
WRITES_PER_WRITER = 100
RACE_ROUNDS = 10
REVOKE_WITHIN_SECONDS = 1.0
KILL_WRITERS = 6
#: Writes acknowledged before the SIGKILL, and by the survivors after it.
ACKED_BEFORE_KILL = 150
ACKED_AFTER_KILL = 150


def env_for(state_dir: Path) -> dict[str, str]:
    """The environment of every CLI command and server of one cluster."""
    return {**ENV_BASE, "ORGSETTINGS_STATE_DIR": str(state_dir)}


class Client(reliability.Client):
    """One keep-alive connection to one instance (reliability.Client, without the timing)."""

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """Send one request; returns status, lower-cased headers and the decoded JSON body."""
        status, answer, decoded, _ = super().request(method, path, body, headers)
        return status, answer, decoded


def version_of(headers: dict[str, str]) -> int:
    """The organization version an ETag header (``"N"``) carries."""
    etag = headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), etag
    return int(etag.strip('"'))


class Cluster:
    """Three servers over one database, an organization and a full-scope key for it."""

    def __init__(self, url: str, env: dict[str, str], servers: list[Server]) -> None:
        self.url, self.env, self.servers = url, env, servers

    def new_org(self, name: str) -> tuple[str, dict[str, Any]]:
        """A fresh organization and a key with every scope (``id`` and ``key``)."""
        org = cli(self.url, "org", "create", "--name", name, env=self.env)
        return org["id"], full_key(self.url, org["id"], env=self.env)

    def clients(self, secret: str) -> list[Client]:
        """One client per instance."""
        return [Client(server.base_url, secret) for server in self.servers]

    def logs(self) -> str:
        """Every instance's log, for failure messages."""
        return "\n".join(f"--- {s.base_url}\n{s.log()[-3000:]}" for s in self.servers)


def refuses_connections(base_url: str) -> bool:
    """True when nothing accepts connections on the instance's port any more."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


@contextmanager
def three_servers(directory: Path) -> Iterator[Cluster]:
    """Init a fresh PostgreSQL database, start three one-worker servers on it; always stop
    every one that started."""
    url = new_database(directory)
    env = env_for(directory)
    cli(url, "init", env=env)
    servers: list[Server] = []
    try:
        for i in range(INSTANCES):
            servers.append(start_server(url, env=env, log_path=directory / f"s{i}.log"))
        yield Cluster(url, env, servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three instances shared by the tests that kill none (each makes its own organization)."""
    with three_servers(tmp_path_factory.mktemp("multi")) as running:
        yield running


def all_events(client: Client) -> list[dict[str, Any]]:
    """Every audit event of the key's organization, newest first, following next_cursor."""
    events: list[dict[str, Any]] = []
    path = "/v1/audit_events?limit=100"
    while True:
        status, _, body = client.request("GET", path)
        assert status == 200, body
        assert len(body["data"]) <= 100
        events += body["data"]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return events
        path = f"/v1/audit_events?limit=100&cursor={body['next_cursor']}"


def read_everywhere(cluster: Cluster, secret: str) -> tuple[dict[str, Any], int]:
    """GET /v1/organization on every instance; asserts they all answer the same record and
    ETag, and returns it with its version."""
    answers = []
    for client in cluster.clients(secret):
        status, headers, body = client.request("GET", "/v1/organization")
        client.close()
        assert status == 200, body
        answers.append((body["data"], version_of(headers)))
    assert all(answer == answers[0] for answer in answers), answers
    return answers[0]


def run_threads(jobs: list[Callable[[], None]], timeout: float = 120) -> None:
    """Run each job on its own thread and wait for all; re-raises the first failure."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except BaseException as exc:  # re-raised in the test's thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(job), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    if errors:
        raise errors[0]


def race(
    clients: list[Client], method: str, path: str, body: Any, headers: dict[str, str]
) -> list[tuple[int, dict[str, str], Any]]:
    """The same request sent through every client at once (released by one barrier)."""
    barrier = threading.Barrier(len(clients))
    answers: list[Any] = [None] * len(clients)

    def racer(index: int) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            answers[index] = clients[index].request(method, path, body, headers)

        return run

    run_threads([racer(index) for index in range(len(clients))], timeout=30)
    return answers


def versions_on_trail(updated: list[dict[str, Any]], initial: int) -> dict[str, int]:
    """Name set -> the version its event made, from the events' order (newest first): the
    oldest update after ``initial`` made version ``initial + 1``, and so on."""
    oldest_first = list(reversed(updated))
    return {e["changes"]["name"]["to"]: initial + 1 + i for i, e in enumerate(oldest_first)}


def verify_audit(cluster: Cluster, org_id: str) -> None:
    """``orgsettings audit verify`` finds the organization's chain (and every other) intact."""
    for args in (("--org", org_id), ()):
        result = cli(cluster.url, "audit", "verify", *args, env=cluster.env)
        assert result["broken"] is None, result


def updates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The organization.updated events among ``events``."""
    return [event for event in events if event["type"] == "organization.updated"]


def test_writes_spread_over_three_instances_all_land_once(cluster: Cluster) -> None:
    """800 PATCHes from 8 threads round-robin over 3 instances: all 200, each with its own new
    version, version +800 exactly, exactly 800 new organization.updated events (distinct ids,
    one per name sent), every instance reads the same record, audit chain intact."""
    org_id, key = cluster.new_org("Multi Writes")
    _, initial = read_everywhere(cluster, key["key"])
    results: list[tuple[str, int, int | None]] = []  # (name sent, status, version answered)
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(index: int) -> Callable[[], None]:
        def run() -> None:
            clients = cluster.clients(key["key"])
            start.wait()
            for i in range(WRITES_PER_WRITER):
                name = f"Multi Writes {index}-{i}"
                client = clients[(index + i) % INSTANCES]
                status, headers, body = client.request("PATCH", "/v1/organization", {"name": name})
                version = version_of(headers) if status == 200 else None
                with lock:
                    results.append((name, status, version))
                assert status == 200, (client.port, status, body)
                assert body["data"]["name"] == name
            for client in clients:
                client.close()

        return run

    started = time.perf_counter()
    run_threads([writer(index) for index in range(WRITERS)])
    took = time.perf_counter() - started
    total = WRITERS * WRITES_PER_WRITER
    assert len(results) == total
    assert [r for r in results if r[1] != 200] == []
    # Each acknowledged write got a version of its own: none overwrote another unseen.
    assert sorted(r[2] for r in results) == list(range(initial + 1, initial + total + 1))

    record, final = read_everywhere(cluster, key["key"])
    assert final == initial + total
    last_name = max(results, key=lambda r: r[2] or 0)[0]
    assert record["name"] == last_name

    events = all_events(cluster.clients(key["key"])[1])
    updated = updates(events)
    assert len(updated) == total
    assert len({event["id"] for event in updated}) == total
    assert len({event["id"] for event in events}) == len(events)
    assert sorted(e["changes"]["name"]["to"] for e in updated) == sorted(r[0] for r in results)
    # The trail's order is the version order every instance answered.
    assert versions_on_trail(updated, initial) == {name: version for name, _, version in results}
    verify_audit(cluster, org_id)
    print(f"\n{total} writes over {INSTANCES} instances in {took:.2f} s: {total / took:.0f}/s")


def test_if_match_race_across_instances_has_one_winner(cluster: Cluster) -> None:
    """The same conditional PATCH sent at once to all three instances, ten rounds: exactly one
    200 per round (carrying the next ETag), the others 412 PRECONDITION_FAILED in the v1 error
    envelope; the version rises by exactly one per round."""
    org_id, key = cluster.new_org("Multi Race")
    _, initial = read_everywhere(cluster, key["key"])
    clients = cluster.clients(key["key"])
    for client in clients:  # open every connection before the first race
        assert client.request("GET", "/v1/organization")[0] == 200
    for round_ in range(RACE_ROUNDS):
        status, headers, _ = clients[round_ % INSTANCES].request("GET", "/v1/organization")
        assert status == 200
        etag = headers["etag"]
        assert version_of(headers) == initial + round_
        body = {"name": f"Multi Race round {round_}"}
        answers = race(clients, "PATCH", "/v1/organization", body, {"If-Match": etag})
        statuses = sorted(answer[0] for answer in answers)
        assert statuses == [200, 412, 412], (round_, answers)
        for status, headers, payload in answers:
            if status == 200:
                assert version_of(headers) == initial + round_ + 1
                assert payload["data"]["name"] == body["name"]
                continue
            assert payload["success"] is False
            assert payload["error"]["code"] == "PRECONDITION_FAILED"
            assert payload["error"]["message"]
            # Each loser names the winner's version: every instance saw the same commit.
            winner = f'"{initial + round_ + 1}"'
            assert payload["error"]["details"] == {"If-Match": f"current ETag is {winner}"}
            assert payload["error"]["request_id"] == headers["x-request-id"]
            assert set(payload) == {"success", "error"}
    for client in clients:
        client.close()
    record, final = read_everywhere(cluster, key["key"])
    assert final == initial + RACE_ROUNDS
    assert record["name"] == f"Multi Race round {RACE_ROUNDS - 1}"
    assert len(updates(all_events(cluster.clients(key["key"])[0]))) == RACE_ROUNDS
    verify_audit(cluster, org_id)


def test_revoked_key_refused_by_every_instance_within_a_second(cluster: Cluster) -> None:
    """A key that works on all three instances is refused (401, v1 error envelope) by every
    one of them within 1 s of `orgsettings key revoke` returning."""
    _, key = cluster.new_org("Multi Revoke")
    clients = cluster.clients(key["key"])
    for client in clients:
        status, _, body = client.request("GET", "/v1/organization")
        assert status == 200, body
    cli(cluster.url, "key", "revoke", key["id"], env=cluster.env)
    revoked = time.monotonic()
    deadline = revoked + REVOKE_WITHIN_SECONDS
    flipped: dict[int, float] = {}  # instance -> seconds after the revoke returned
    last: dict[int, tuple[int, Any]] = {}

    def poll(index: int) -> Callable[[], None]:
        def run() -> None:
            while time.monotonic() < deadline:
                status, _, body = clients[index].request("GET", "/v1/organization")
                last[index] = (status, body)
                if status == 401:
                    flipped[index] = time.monotonic() - revoked
                    return
                assert status == 200, body
                time.sleep(0.01)

        return run

    run_threads([poll(index) for index in range(INSTANCES)], timeout=10)
    assert sorted(flipped) == list(range(INSTANCES)), f"still accepted: {last}"
    assert all(seconds <= REVOKE_WITHIN_SECONDS for seconds in flipped.values()), flipped
    for index in range(INSTANCES):  # and it stays refused, in the v1 error envelope
        status, headers, body = clients[index].request("GET", "/v1/organization")
        assert status == 401
        assert body["success"] is False and body["error"]["code"] == "UNAUTHORIZED"
        assert body["error"]["request_id"] == headers["x-request-id"]
        clients[index].close()
    print(f"\nrevocation seen after (ms): {[round(flipped[i] * 1000) for i in sorted(flipped)]}")


def test_sigkill_one_instance_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """SIGKILL one of three instances mid-load: the other two keep answering 200, every write
    any instance acknowledged is on the audit trail, the final version is the initial one plus
    the organization.updated events, and the audit chain is intact."""
    with three_servers(tmp_path) as cluster:
        org_id, key = cluster.new_org("Multi Kill")
        _, initial = read_everywhere(cluster, key["key"])
        victim = 0
        killed = threading.Event()
        stop = threading.Event()
        lock = threading.Lock()
        acked: dict[str, int] = {}  # name -> version its 200 answered
        acked_after_kill = 0
        bad: list[tuple[int, Any]] = []  # (instance, status or error): none is expected
        counter = iter(range(10**9))

        def writer(index: int) -> Callable[[], None]:
            def run() -> None:
                nonlocal acked_after_kill
                clients = cluster.clients(key["key"])
                for i in range(10**9):
                    if stop.is_set():
                        break
                    target = (index + i) % INSTANCES
                    with lock:
                        name = f"Multi Kill {next(counter)}"
                    was_killed = killed.is_set()
                    try:
                        status, headers, body = clients[target].request(
                            "PATCH", "/v1/organization", {"name": name}
                        )
                    except (OSError, http.client.HTTPException) as exc:
                        # Tolerated from the killed instance only, once the kill began.
                        if not (target == victim and killed.is_set()):
                            with lock:
                                bad.append((target, repr(exc)))
                        continue
                    with lock:
                        if status != 200:
                            bad.append((target, (status, body)))
                            continue
                        acked[name] = version_of(headers)
                        if was_killed and target != victim:
                            acked_after_kill += 1
                for client in clients:
                    client.close()

            return run

        def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
            give_up = time.monotonic() + timeout
            while not condition():
                assert time.monotonic() < give_up, f"timed out waiting for {what}: {bad}"
                assert not bad, bad
                time.sleep(0.01)

        threads = [
            threading.Thread(target=writer(index), daemon=True) for index in range(KILL_WRITERS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(acked) >= ACKED_BEFORE_KILL, "writes before the kill")
            assert cluster.servers[victim].workers(), "the instance has no worker process"
            killed.set()
            cluster.servers[victim].crash()
            assert cluster.servers[victim].process.returncode == -signal.SIGKILL
            gone = cluster.servers[victim].base_url
            wait_for(lambda: refuses_connections(gone), "the killed instance's port to close")
            wait_for(lambda: acked_after_kill >= ACKED_AFTER_KILL, "the survivors' writes")
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        took = time.perf_counter() - started
        assert not any(thread.is_alive() for thread in threads), "a writer hung"
        assert bad == [], bad
        assert acked_after_kill >= ACKED_AFTER_KILL
        # Every acknowledged write got its own version.
        assert len(set(acked.values())) == len(acked)

        survivors = [s for i, s in enumerate(cluster.servers) if i != victim]
        answers = []
        for server in survivors:
            client = Client(server.base_url, key["key"])
            status, headers, body = client.request("GET", "/v1/organization")
            assert status == 200, body
            answers.append((body["data"], version_of(headers)))
            events = all_events(client)
            client.close()
        assert answers[0] == answers[1]
        record, final = answers[0]
        updated = updates(events)
        written = {event["changes"]["name"]["to"] for event in updated}
        missing = set(acked) - written
        assert not missing, f"{len(missing)} acknowledged writes have no event: {sorted(missing)}"
        assert final == initial + len(updated)
        on_trail = versions_on_trail(updated, initial)
        assert {name: on_trail[name] for name in acked} == acked
        assert len({event["id"] for event in updated}) == len(updated)
        assert max(acked.values()) <= final
        assert record["name"] == updated[0]["changes"]["name"]["to"]  # newest event first
        verify_audit(cluster, org_id)
        print(
            f"\n{len(acked)} writes acknowledged in {took:.2f} s "
            f"({len(acked) / took:.0f}/s), {acked_after_kill} by the survivors after the kill; "
            f"{len(updated)} events, version {initial} -> {final}"
        )
