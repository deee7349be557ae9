"""``orgsettings serve`` says where it listens, and refuses an address it cannot listen on."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from handlers.cli.main import main
from live import ORGSETTINGS, ROOT, free_port, wait_ready


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ORGSETTINGS_* from the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ORGSETTINGS_"):
            monkeypatch.delenv(name)


def read_line(process: subprocess.Popen, timeout: float = 30) -> str:
    """The first line the process writes to stdout, waiting at most ``timeout`` seconds."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line on stdout within {timeout} s: {data!r}")
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"stdout closed (exit {process.wait(10)}): {data!r}")
            data += chunk
    finally:
        selector.close()
    return data.split(b"\n", 1)[0].decode()


@pytest.mark.parametrize(("workers", "as_json"), [(1, False), (2, False), (1, True)])
def test_serve_prints_where_it_listens(tmp_path: Path, workers: int, as_json: bool) -> None:
    """One line on stdout before the first request, naming the URL, workers and database."""
    db = tmp_path / "serve.db"
    assert main(["--db", str(db), "init"]) == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGSETTINGS_")}
    process = subprocess.Popen(
        [ORGSETTINGS, "--db", str(db), "serve", "--port", str(port), "--workers", str(workers)]
        + (["--json"] if as_json else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**env, "ORGSETTINGS_LOG_REQUESTS": "0"},
        cwd=ROOT,
    )
    try:
        line = read_line(process)
        plural = "s" if workers > 1 else ""
        if as_json:
            assert json.loads(line) == {
                "listening": f"http://127.0.0.1:{port}",
                "workers": workers,
                "database": str(db),
            }
        else:
            assert line == (
                f"orgsettings listening on http://127.0.0.1:{port} "
                f"({workers} worker{plural}, database {db})"
            )
        wait_ready(f"http://127.0.0.1:{port}", process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        assert process.stdout is not None
        process.stdout.close()
    assert process.returncode == 0


def test_serve_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port something listens on: one line on stderr, exit 2, nothing printed on stdout."""
    db = tmp_path / "serve.db"
    assert main(["--db", str(db), "init"]) == 0
    capsys.readouterr()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = main(["--db", str(db), "serve", "--port", str(port)])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err == f"orgsettings: error: port {port} on 127.0.0.1 is in use\n"


def test_serve_refuses_an_address_not_of_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host that is not one of this machine's addresses: one line, exit 2."""
    assert main(["--db", str(tmp_path / "s.db"), "init"]) == 0
    capsys.readouterr()
    status = main(["--db", str(tmp_path / "s.db"), "serve", "--host", "192.0.2.1", "--port", "9"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err == (
        "orgsettings: error: cannot listen on 192.0.2.1: not an address of this machine\n"
    )


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_serve_refuses_a_port_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    """--port outside 1-65535 is a usage error (it used to wrap round to another port)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(tmp_path / "s.db"), "serve", "--port", port])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "--port: must be" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "s.db").exists()
