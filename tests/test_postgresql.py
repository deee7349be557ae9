"""PostgreSQL only: migrations under the advisory lock, bounded waits, and a database that goes
away, freezes or is locked by another program: 503 with Retry-After, never a 500 or a hang, and
recovery without a restart. (Append-only, tampering, lost updates and the If-Match race run on
both backends in the rest of the suite; three live instances in test_multi_instance.py.)"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from conftest import OPERATOR, SyncStore, bearer, new_database, query, sync_store
from handlers.app import create_app
from handlers.config import Config
from live import ORGSETTINGS, free_port
from storage import open_store
from storage.postgresql.migrations import latest_version

pytestmark = pytest.mark.postgresql_only


class Proxy:
    """A TCP relay between the service and PostgreSQL that a test can cut, freeze and restore,
    as a network or a database server failing would."""

    def __init__(self, target_url: str) -> None:
        params = conninfo_to_dict(target_url)
        self.target = (params["host"], int(params["port"]))
        self.url = target_url.replace(f":{params['port']}/", f":{free_port()}/", 1)
        self.port = int(conninfo_to_dict(self.url)["port"])
        #: While set, bytes are held, not relayed: a server that stopped answering.
        self.frozen = threading.Event()
        self._sockets: list[socket.socket] = []
        self._mutex = threading.Lock()
        self._listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        """Accept connections (again) on the proxy's port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._mutex:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.01)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)

    def cut(self) -> None:
        """The database goes away: new connections are refused, open ones are closed."""
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        with self._mutex:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(database: str) -> Iterator[Proxy]:
    """A relay to this test's database (see Proxy); cut when the test ends."""
    relay = Proxy(database)
    yield relay
    relay.frozen.clear()
    relay.cut()


def quick(config: Config, database: str, **options: Any) -> Config:
    """The test config over ``database`` with short bounds on every database wait."""
    bounds = {
        "db_wait_seconds": 0.5,
        "db_statement_timeout_seconds": 1.0,
        "db_connect_timeout_seconds": 2.0,
    }
    return Config(**{**config.__dict__, "database": database, **bounds, **options})


def assert_503(response: Any, surface: str = "v1") -> None:
    """A documented 503: Retry-After, the surface's own error shape, no driver text."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    if surface == "v1":
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    else:
        assert response.json()["error"] == "Service unavailable"
    assert "psycopg" not in response.text and "127.0.0.1" not in response.text


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


# -- migrations -------------------------------------------------------------------------------


def test_ten_instances_starting_at_once_migrate_once(tmp_path: Path) -> None:
    """Ten stores migrating one new database at the same moment: all end at the latest
    version, each step is applied once (one schema_migrations row each), nothing fails."""
    url = new_database(tmp_path)
    barrier = threading.Barrier(10)
    results: list[Any] = []

    def start() -> None:
        store = SyncStore(open_store(url))  # not migrated yet
        try:
            barrier.wait(timeout=10)
            results.append(store.migrate())
        except BaseException as exc:  # reported below
            results.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=start) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [latest_version()] * 10
    rows = query(url, "SELECT version FROM schema_migrations ORDER BY version")
    assert rows == [(n,) for n in range(1, latest_version() + 1)]


def test_a_schema_of_a_newer_release_is_served(store, org, config) -> None:
    """Mid rolling deploy the next release has migrated one step ahead: this release applies
    nothing, stays ready and keeps serving (steps are additive)."""
    query(config.database, "INSERT INTO schema_migrations (version) VALUES (?)", [99])
    assert store.migrate() == 99
    assert store.is_ready() is True
    assert store.get_org(org["id"])["id"] == org["id"]


# -- the database going away --------------------------------------------------------------------


def test_database_gone_is_503_and_the_service_recovers_by_itself(
    config, database, proxy, store, org, admin_key, auth
) -> None:
    """The database goes away: reads, writes and /readyz are 503 within the bound, never 500
    nor a hang; it comes back: everything answers again without a restart, nothing lost."""
    with create_app(quick(config, proxy.url)).test_client() as client:
        ok = client.patch("/v1/organization", json={"name": "Before"}, headers=bearer(admin_key))
        assert ok.status_code == 200
        proxy.cut()
        started = time.monotonic()
        assert_503(client.get("/v1/organization", headers=bearer(admin_key)))
        assert_503(
            client.patch("/v1/organization", json={"name": "Lost"}, headers=bearer(admin_key))
        )
        assert_503(
            client.put(
                f"/api/organizations/{org['id']}/contact-protection-settings",
                json={"contactProtectionPeriod": 5},
                headers=auth("ADMIN", org["id"]),
            ),
            surface="dashboard",
        )
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        assert time.monotonic() - started < 12
        proxy.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, 15, "ready again")
        again = client.patch("/v1/organization", json={"name": "After"}, headers=bearer(admin_key))
        assert again.status_code == 200
    final = store.get_org(org["id"])
    assert final["name"] == "After"
    assert final["version"] == org["version"] + 2  # "Lost" was never written


def test_a_database_that_stops_answering_is_503_within_the_bound(
    config, proxy, store, org, admin_key
) -> None:
    """A server that accepts bytes and never answers (a frozen host): 503 within the bound
    (pool wait + statement + connect timeouts), and service again once it answers."""
    settings = quick(config, proxy.url)
    bound = (
        settings.db_wait_seconds
        + settings.db_statement_timeout_seconds
        + settings.db_connect_timeout_seconds
    )
    with create_app(settings).test_client() as client:
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
        proxy.frozen.set()
        started = time.monotonic()
        assert_503(client.get("/v1/organization", headers=bearer(admin_key)))
        assert time.monotonic() - started < bound + 2
        assert client.get("/readyz").status_code == 503
        proxy.frozen.clear()
        wait_until(
            lambda: client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200,
            15,
            "reads again",
        )
        write = client.patch("/v1/organization", json={"name": "Thawed"}, headers=bearer(admin_key))
        assert write.status_code == 200
    assert store.get_org(org["id"])["name"] == "Thawed"


def test_another_program_locking_the_table_delays_nothing_but_writes(
    config, database, store, org, admin_key
) -> None:
    """Another program holds an EXCLUSIVE lock on organizations (a migration by hand, say):
    reads and probes answer at once, a write is 503 within the lock bound and changes
    nothing, and the fault is counted in /metrics."""
    with (
        create_app(quick(config, database)).test_client() as client,
        psycopg.connect(database) as outside,
    ):
        outside.execute("LOCK TABLE organizations IN EXCLUSIVE MODE")
        started = time.monotonic()
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
        assert time.monotonic() - started < 1
        assert_503(client.patch("/v1/organization", json={"name": "X"}, headers=bearer(admin_key)))
        assert time.monotonic() - started < 3
        outside.rollback()
        assert 'reason="the database is busy"' in client.get("/metrics").text
        free = client.patch("/v1/organization", json={"name": "Free"}, headers=bearer(admin_key))
        assert free.status_code == 200
    assert store.get_org(org["id"])["version"] == org["version"] + 1


def test_a_statement_past_its_timeout_is_503(config, database, org, admin_key) -> None:
    """With the lock bound longer than the statement timeout, a read stuck behind an ACCESS
    EXCLUSIVE lock is cancelled by the statement timeout: 503 after about that long."""
    settings = quick(config, database, db_wait_seconds=5.0, db_statement_timeout_seconds=0.3)
    with (
        create_app(settings).test_client() as client,
        psycopg.connect(database) as outside,
    ):
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200
        outside.execute("LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        assert_503(client.get("/v1/organization", headers=bearer(admin_key)))
        assert time.monotonic() - started < 2
        outside.rollback()
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 200


# -- the CLI ----------------------------------------------------------------------------------


def orgsettings(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the CLI; its exit status, stdout and stderr."""
    return subprocess.run(
        [ORGSETTINGS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_the_cli_never_prints_the_database_password(database: str, tmp_path: Path) -> None:
    """A URL with a password: init and demo show the database without it."""
    params = conninfo_to_dict(database)
    url = f"postgresql://{params['user']}:s3cret-pw@{params['host']}:{params['port']}/{params['dbname']}"
    env = {"ORGSETTINGS_STATE_DIR": str(tmp_path)}
    for command in (["init"], ["demo"]):
        done = orgsettings("--db", url, *command, env=env)
        assert done.returncode == 0, done.stderr
        assert "s3cret-pw" not in done.stdout + done.stderr
        assert f"{params['host']}:{params['port']}/{params['dbname']}" in done.stdout


def test_an_unreachable_database_is_one_line_and_exit_3() -> None:
    """Nothing listens at the URL: every command, serve included, says so in one line and
    exits 3 within the bound, before anything listens."""
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    env = {"ORGSETTINGS_DB_WAIT_SECONDS": "1"}
    for command in (["init"], ["org", "show", "x"], ["serve", "--port", str(free_port())]):
        started = time.monotonic()
        done = orgsettings("--db", url, *command, env=env)
        assert time.monotonic() - started < 15
        assert done.returncode == 3, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith("orgsettings: error: database unavailable:")
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORGSETTINGS_DB_POOL_SIZE", "0"),
        ("ORGSETTINGS_DB_POOL_SIZE", "many"),
        ("ORGSETTINGS_DB_STATEMENT_TIMEOUT_SECONDS", "-1"),
        ("ORGSETTINGS_DB_CONNECT_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_bad_pool_and_timeout_settings_are_refused(database: str, name: str, value: str) -> None:
    """A bad pool size or timeout is one line naming the variable, exit 2."""
    done = orgsettings("--db", database, "init", env={name: value})
    assert done.returncode == 2
    assert name in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_operator_changes_and_keys_work_through_the_cli(database: str, tmp_path: Path) -> None:
    """The CLI's writes (org, key, brand) land in PostgreSQL with their audit events."""
    env = {"ORGSETTINGS_STATE_DIR": str(tmp_path)}
    assert orgsettings("--db", database, "init", env=env).returncode == 0
    store = sync_store(database)
    try:
        org = store.create_org(name="CLI Org", actor=OPERATOR)
        done = orgsettings(
            "--db", database, "brand", "create", "--org", org["id"], "--status", "ACTIVE", env=env
        )
        assert done.returncode == 0, done.stderr
        assert store.get_org(org["id"])["registration_status"]["brand"] == "ACTIVE"
        types = [e["type"] for e in store.list_events(org["id"], limit=10)[0]]
        assert types == ["brand.created", "organization.created"]
    finally:
        store.close()


# -- closing, and databases the service cannot use ------------------------------------------


def test_a_url_it_cannot_parse_is_one_line_without_the_password() -> None:
    """A password with a raw '%' makes the URL unparsable: exit 2, one line, and the password
    (which the driver's own message would quote) is not in it."""
    url = f"postgresql://someone:s3cr%ZZet@127.0.0.1:{free_port()}/x"
    done = orgsettings("--db", url, "init")
    assert done.returncode == 2, done.stderr
    assert "s3cr" not in done.stderr + done.stdout
    assert "percent-encoded" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_database_not_in_utf8_is_refused_at_start(tmp_path: Path) -> None:
    """A SQL_ASCII database would fail valid requests later: init refuses it with the reason."""
    url = new_database(tmp_path)
    name = conninfo_to_dict(url)["dbname"] + "_ascii"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f'CREATE DATABASE "{name}" ENCODING SQL_ASCII TEMPLATE template0'
            " LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    ascii_url = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        done = orgsettings("--db", ascii_url, "init")
        assert done.returncode == 2, done.stderr
        assert "encoding is SQL_ASCII; orgsettings needs UTF8" in done.stderr
        assert query(ascii_url, "SELECT to_regclass('organizations')") == [(None,)]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')


def waiting_on_a_lock(database: str) -> bool:
    """True once one of the service's statements waits for a lock another session holds."""
    rows = query(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orgsettings'"
        " AND wait_event_type = 'Lock'",
    )
    return rows[0][0] > 0


def test_close_lets_a_write_in_flight_finish(database: str, store, org) -> None:
    """close() while a write waits for a row lock: the write completes (it is not cancelled
    into an error nobody handles), then the store closes."""
    closing = sync_store(database)
    outcome: list[Any] = []
    with psycopg.connect(database) as outside:
        outside.execute("SELECT 1 FROM organizations WHERE id = %s FOR UPDATE", [org["id"]])

        def write() -> None:
            try:
                outcome.append(
                    closing.modify_org(
                        org["id"],
                        lambda o: ({**o, "name": "Closed"}, None),
                        actor=OPERATOR,
                        surface="cli",
                        request_id=None,
                    )
                )
            except BaseException as exc:  # asserted below
                outcome.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        wait_until(lambda: waiting_on_a_lock(database), 5, "the write waiting for the lock")
        closer = threading.Thread(target=closing.close)
        closer.start()
        outside.rollback()  # the lock is released while close() waits
        closer.join(20)
        writer.join(20)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    assert store.get_org(org["id"])["name"] == "Closed"


def test_close_writes_key_uses_whose_flush_is_in_flight(database: str, store, org) -> None:
    """A key-use flush blocked by another session's row lock when close() comes: close waits
    for it, so the use is written rather than dropped."""
    from handlers.auth.api_keys import mint_key

    fast = sync_store(database, key_usage_seconds=0.05)
    _, prefix, key_hash = mint_key()
    key = fast.create_key(
        org_id=org["id"], key_hash=key_hash, prefix=prefix, scopes=["org:read"], actor=OPERATOR
    )
    with psycopg.connect(database) as outside:
        outside.execute("SELECT 1 FROM api_keys WHERE id = %s FOR UPDATE", [key["id"]])
        fast.note_key_use(key["id"])
        wait_until(lambda: waiting_on_a_lock(database), 5, "the flush waiting for the lock")
        closer = threading.Thread(target=fast.close)
        closer.start()
        outside.rollback()
        closer.join(20)
    assert store.key_by_hash(key_hash)["last_used_at"] is not None
