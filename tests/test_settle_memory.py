"""What a serve worker does once its app has started: start-up's objects leave the collector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import JWT_SECRET, new_database
from handlers.app import create_app
from handlers.config import Config

ROOT = Path(__file__).resolve().parent.parent


def test_the_started_hook_runs_once_with_the_store_migrated(tmp_path: Path) -> None:
    """``create_app(started=...)`` is called once, at start-up, before the first request, with
    the database already migrated (so what it freezes is the app as it serves)."""
    calls: list[int] = []
    config = Config(
        database=new_database(tmp_path, "a.db"),
        state_dir=tmp_path,
        jwt_secret=JWT_SECRET,
        log_requests=False,
    )
    app = create_app(config, started=lambda: calls.append(len(calls)))
    assert calls == []
    with app.test_client() as client:
        assert calls == [0]
        assert client.get("/readyz").status_code == 200
        assert client.get("/healthz").status_code == 200
    assert calls == [0]


def test_settle_memory_freezes_start_up_and_keeps_collecting_new_garbage() -> None:
    """In a fresh interpreter (the collector is process-wide): after ``settle_memory`` the
    objects alive at start-up are frozen, full collections no longer walk them, and a
    reference cycle made afterwards is still collected."""
    code = """
import gc, json
from handlers.cli.served import settle_memory, YOUNG_GENERATION_THRESHOLD
start_up = [{"n": i} for i in range(50_000)]
settle_memory()
frozen = gc.get_freeze_count()
class Cycle:
    pass
made = Cycle(); made.me = made
del made
found = gc.collect()
print(json.dumps({"frozen": frozen, "threshold": gc.get_threshold()[0],
                  "young": YOUNG_GENERATION_THRESHOLD, "collected": found}))
"""
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["frozen"] >= 50_000
    assert seen["threshold"] == seen["young"] > 700
    assert seen["collected"] >= 1  # the cycle
