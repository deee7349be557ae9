"""GET /metrics: Prometheus text with requests, latencies, write batches and faults."""

from __future__ import annotations

import fcntl
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import bearer
from handlers.app import create_app
from handlers.config import Config
from handlers.http.metrics import Metrics


def samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_requests_are_counted_by_surface_operation_and_status(client, org, admin_key) -> None:
    """Two GETs, a refused PATCH and a 404 show up with their labels and latencies."""
    client.get("/v1/organization", headers=bearer(admin_key))
    client.get("/v1/organization", headers=bearer(admin_key))
    client.patch("/v1/organization", json={"name": None}, headers=bearer(admin_key))
    client.get("/v1/nope")
    seen = samples(client)
    get = (("operation", "get_organization"), ("status", "200"), ("surface", "v1"))
    assert seen[("orgsettings_requests_total", get)] == 2
    patch = (("operation", "patch_organization"), ("status", "422"), ("surface", "v1"))
    assert seen[("orgsettings_requests_total", patch)] == 1
    unrouted = (("operation", "unrouted"), ("status", "404"), ("surface", "v1"))
    assert seen[("orgsettings_requests_total", unrouted)] == 1
    labels = (("operation", "get_organization"), ("surface", "v1"))
    assert seen[("orgsettings_request_duration_seconds_count", labels)] == 2


def test_write_batches_and_their_waits_are_observed(client, org, admin_key) -> None:
    """Each committed PATCH is in the batch-size and write-wait histograms."""
    for days in (31, 32, 33):
        body = {"message_retention_days": days}
        assert client.patch("/v1/organization", json=body, headers=bearer(admin_key)).status_code
    seen = samples(client)
    assert seen[("orgsettings_write_batch_size_sum", ())] >= 3
    assert seen[("orgsettings_write_wait_seconds_count", ())] >= 3


@pytest.mark.sqlite_only
def test_database_faults_and_rate_limits_are_counted(config, org, admin_key) -> None:
    """A write refused for a held lock counts as a database error; a 429 as rate limited."""
    quick = Config(**{**config.__dict__, "db_wait_seconds": 0.3, "key_requests_per_minute": 1})
    fd = os.open(f"{config.db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    with create_app(quick).test_client() as client:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            response = client.patch(
                "/v1/organization", json={"name": "X"}, headers=bearer(admin_key)
            )
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        assert response.status_code == 503
        assert client.get("/v1/organization", headers=bearer(admin_key)).status_code == 429
        seen = samples(client)
    reason = (("reason", "another writer holds the database"),)
    assert seen[("orgsettings_database_errors_total", reason)] == 1
    assert seen[("orgsettings_rate_limited_total", (("surface", "v1"),))] == 1


def test_metrics_can_be_turned_off(config) -> None:
    """metrics=False (ORGSETTINGS_METRICS=0): /metrics is 404."""
    with create_app(Config(**{**config.__dict__, "metrics": False})).test_client() as client:
        assert client.get("/metrics").status_code == 404


def test_two_apps_in_one_process_count_apart(config, org, admin_key) -> None:
    """Each app has its own registry: one app's requests are not in the other's scrape."""
    with create_app(config).test_client() as first, create_app(config).test_client() as second:
        first.get("/v1/organization", headers=bearer(admin_key))
        first.get("/v1/organization", headers=bearer(admin_key))
        second.get("/v1/organization", headers=bearer(admin_key))
        get = (("operation", "get_organization"), ("status", "200"), ("surface", "v1"))
        assert samples(first)[("orgsettings_requests_total", get)] == 2
        assert samples(second)[("orgsettings_requests_total", get)] == 1


def test_shared_metrics_refuse_a_process_that_cannot_write_them(tmp_path) -> None:
    """A worker whose prometheus_client was imported without PROMETHEUS_MULTIPROC_DIR (as
    this test process's was) would leave its requests out of every total: it refuses to start."""
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(tmp_path)
