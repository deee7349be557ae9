"""Prometheus metrics (prometheus-client), served at ``GET /metrics`` in the text format.

Without a shared directory (one worker, tests) each app has its own registry, so building an
app changes nothing process-wide, and a scrape shows that app's figures.

With ``serve --workers N`` the metrics are prometheus-client's multiprocess mode: ``serve``
makes a fresh, private directory for the run and sets ``PROMETHEUS_MULTIPROC_DIR`` to it
before any worker exists (the library chooses its value class when it is first imported), each
worker writes its values into files of its own pid there, and a scrape, whichever worker takes
it, sums every file: the instance's totals, each request once. A worker Granian replaces (a
SIGHUP reload) starts files of its own new pid; its predecessor's files stay and keep counting,
so nothing is lost or counted twice. Gauges would need a ``multiprocess_mode`` (a live one is
cleared by ``mark_process_dead``, which a worker calls when it stops); there are none.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Every metric of one app: in a registry of its own, or (``multiprocess_dir``) in the
    files every worker of the instance writes, collected from there."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is None:
            self.registry = CollectorRegistry(auto_describe=True)
            owner: CollectorRegistry | None = self.registry
        else:
            # The metrics are registered nowhere: the collector reads what they wrote.
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=str(multiprocess_dir))
            owner = None
        self.requests = Counter(
            "orgsettings_requests",
            "HTTP requests answered, by surface, operation and status.",
            ["surface", "operation", "status"],
            registry=owner,
        )
        self.duration = Histogram(
            "orgsettings_request_duration_seconds",
            "Time from a request's arrival to its answer, by surface and operation.",
            ["surface", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self.batch_size = Histogram(
            "orgsettings_write_batch_size",
            "Writes committed together by one COMMIT (group commit).",
            buckets=BATCH_BUCKETS,
            registry=owner,
        )
        self.write_wait = Histogram(
            "orgsettings_write_wait_seconds",
            "Time a write waited for its transaction to start.",
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self.database_errors = Counter(
            "orgsettings_database_errors",
            "Requests the database could not take (answered 503), by reason.",
            ["reason"],
            registry=owner,
        )
        self.rate_limited = Counter(
            "orgsettings_rate_limited",
            "Requests refused with 429 (a rate limit), by surface.",
            ["surface"],
            registry=owner,
        )

        #: (surface, operation, status) -> its label children, made on first use: ``labels``
        #: costs more than the count itself. Bounded: operations and statuses are few.
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        if multiprocess_dir is not None:
            _check_multiprocess(multiprocess_dir)

    def request(self, surface: str, operation: str, status: int, seconds: float) -> None:
        """One answered request."""
        children = self._children.get((surface, operation, status))
        if children is None:
            children = self._children[(surface, operation, status)] = (
                self.requests.labels(surface, operation, str(status)),
                self.duration.labels(surface, operation),
                self.rate_limited.labels(surface) if status == 429 else None,
            )
        count, duration, limited = children
        count.inc()
        duration.observe(seconds)
        if limited is not None:
            limited.inc()

    def batch(self, size: int, waits: list[float]) -> None:
        """A committed batch of writes (the storage layer's observer call)."""
        self.batch_size.observe(size)
        for wait in waits:
            self.write_wait.observe(wait)

    def database_error(self, reason: str) -> None:
        """A database fault that failed a request (the storage layer's observer call)."""
        self.database_errors.labels(reason).inc()

    def close(self) -> None:
        """This process stops: what only a live process may show goes (multiprocess mode)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))

    async def endpoint(self, _request: Request) -> Response:
        """GET /metrics."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def _check_multiprocess(directory: Path) -> None:
    """Refuse to serve figures that would leave this worker out: prometheus-client keeps values
    in files only when PROMETHEUS_MULTIPROC_DIR named ``directory`` at its first import (the
    unlabelled histograms above have written theirs by now)."""
    if not any(directory.glob(f"*_{os.getpid()}.db")):
        raise RuntimeError(
            f"metrics: PROMETHEUS_MULTIPROC_DIR must be {directory} before prometheus_client is "
            "first imported; workers of orgsettings serve get it from serve"
        )
