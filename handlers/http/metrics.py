"""Prometheus metrics (prometheus-client), served at ``GET /metrics`` in the text format.

Each app has its own registry, so building an app changes nothing process-wide. With
``--workers N`` every worker process counts its own requests, and a scrape is answered by
whichever worker takes it: its figures are that worker's, since it started. Scrape each
instance as its own target; run with one worker per instance for exact per-instance totals.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Every metric of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "orgsettings_requests",
            "HTTP requests answered, by surface, operation and status.",
            ["surface", "operation", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "orgsettings_request_duration_seconds",
            "Time from a request's arrival to its answer, by surface and operation.",
            ["surface", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "orgsettings_write_batch_size",
            "Writes committed together by one COMMIT (group commit).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.write_wait = Histogram(
            "orgsettings_write_wait_seconds",
            "Time a write waited for its transaction to start.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.database_errors = Counter(
            "orgsettings_database_errors",
            "Requests the database could not take (answered 503), by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "orgsettings_rate_limited",
            "Requests refused with 429 (a rate limit), by surface.",
            ["surface"],
            registry=self.registry,
        )
        #: (surface, operation, status) -> its label children, made on first use: ``labels``
        #: costs more than the count itself. Bounded: operations and statuses are few.
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

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

    async def endpoint(self, _request: Request) -> Response:
        """GET /metrics."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
