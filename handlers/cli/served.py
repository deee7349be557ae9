"""The app ``orgsettings serve`` runs: built in each worker process, after logging is set up.

Logging is process-wide, so it belongs to the server process rather than to ``create_app``
(tests build many apps in one process and configure nothing).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from handlers.app import create_app
from handlers.cli.logs import configure_logging
from handlers.config import Config

if TYPE_CHECKING:
    import connexion

#: The collector's youngest-generation threshold once the app has started (CPython's default:
#: 700). See ``settle_memory``.
YOUNG_GENERATION_THRESHOLD = 7000

#: How often a worker checks that its ``serve`` process is still there.
PARENT_CHECK_SECONDS = 0.25
#: How long a worker orphaned by its ``serve`` process may take to stop gracefully.
ORPHAN_GRACE_SECONDS = 10.0


def exit_with_parent(
    interval: float = PARENT_CHECK_SECONDS, workers_dir: Path | None = None
) -> None:
    """Stop this worker when the process that started it dies.

    Granian's workers are processes of their own: when ``serve`` is killed outright (SIGKILL,
    the OOM killer), they would go on serving its port alone, re-parented to init, and the
    instance a load balancer or a supervisor thinks is gone would keep answering. A worker
    that finds its parent gone sends itself SIGTERM (a graceful stop: in-flight requests end,
    the store closes), and SIGKILL if that takes longer than ORPHAN_GRACE_SECONDS. It first
    removes the directory ``serve`` made for its workers (``workers_dir``), which ``serve`` can
    no longer remove; the workers' open files stay usable until they exit.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        if workers_dir is not None:
            shutil.rmtree(workers_dir, ignore_errors=True)  # every orphaned worker tries
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def settle_memory() -> None:
    """Once the app has started: what start-up built is never collected again.

    The specs, their compiled schemas and the middleware stack are about 100,000 objects that
    live as long as the process. Left in the collector's oldest generation, every full
    collection walks them all: under PATCH load (issue 20) one ran every few seconds and held
    the event loop for up to 63 ms, which was the PATCH p99. ``gc.freeze`` moves them to the
    permanent generation (after one collection, so no garbage is kept): full collections then
    took at most 1 ms. A higher youngest-generation threshold (the objects a request leaves
    are mostly freed by reference counting) took the collector's share of a PATCH from 17 us
    to under 1 us.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def app() -> connexion.AsyncApp:
    """Granian's app factory: JSON logging, exit with ``serve``, the app from the environment,
    its start-up objects frozen (``settle_memory``) once it has started."""
    configure_logging()
    config = Config.from_env()
    exit_with_parent(workers_dir=config.workers_dir)
    return create_app(config, started=settle_memory)
