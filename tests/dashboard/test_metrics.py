"""Prometheus metrics at /metrics: what ingest counts, queue depths read at scrape time, the token, multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import current_app
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from dashboard.ingest.publish import publish_task
from dashboard.ingest.receive import report_submit
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")
ALERT = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def test_a_scan_counts_as_received_and_done_with_its_lag_and_database_time(team, django_capture_on_commit_callbacks) -> None:
    before = (
        value("vigil_reports_received_total", format="trivy", stream="scan"),
        value("vigil_reports_done_total", format="trivy", stream="scan"),
        value("vigil_ingest_lag_seconds_count", stream="scan"),
        value("vigil_report_database_seconds_count", stream="scan"),
        value("vigil_report_database_seconds_sum", stream="scan"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        report_submit(data=ALPINE, team_slug="payments")  # processed in-process (eager) after the commit

    after = (
        value("vigil_reports_received_total", format="trivy", stream="scan"),
        value("vigil_reports_done_total", format="trivy", stream="scan"),
        value("vigil_ingest_lag_seconds_count", stream="scan"),
        value("vigil_report_database_seconds_count", stream="scan"),
    )
    assert [a - b for a, b in zip(after, before[:4], strict=True)] == [1, 1, 1, 1]
    assert value("vigil_report_database_seconds_sum", stream="scan") > before[4]


def test_an_alert_counts_as_an_alert_and_an_unparsable_report_as_failed(team) -> None:
    alerts = value("vigil_alerts_total", format="falco")
    failed = value("vigil_reports_failed_total", format="trivy", stream="scan")

    report_submit(data=ALERT, team_slug="payments", enqueue_now=False)
    with pytest.raises(Exception, match="Results"):
        report_submit(data=b'{"SchemaVersion": 2, "ArtifactName": "x", "Results": 7}', team_slug="payments", format_name="trivy")

    assert value("vigil_alerts_total", format="falco") - alerts == 1
    assert value("vigil_reports_failed_total", format="trivy", stream="scan") - failed == 1


def test_metrics_shows_the_counters_and_each_queues_depth_read_from_the_broker(settings) -> None:
    prefix = f"vigil-test-{uuid.uuid4().hex[:8]}-"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.VIGIL_QUEUES = {name: prefix + name for name in ("reports", "events", "maintenance")}
    publish_task("vigil.reports.process", ["a"], queue=prefix + "reports")
    publish_task("vigil.reports.process", ["b"], queue=prefix + "reports")
    publish_task("vigil.events.process", ["c"], queue=prefix + "events")
    try:
        response = Client().get("/metrics")
    finally:
        with current_app.connection_for_write() as conn:
            for queue in settings.VIGIL_QUEUES.values():
                conn.default_channel.queue_delete(queue)

    samples = scraped(response)
    depths = {labels[0][1]: depth for (name, labels), depth in samples.items() if name == "vigil_queue_depth"}
    assert (response.status_code, response["Content-Type"].split(";")[0]) == (200, "text/plain")
    assert depths == {prefix + "reports": 2, prefix + "events": 1, prefix + "maintenance": 0}
    names = {name for name, _ in samples}
    assert {"vigil_reports_received_total", "vigil_ingest_lag_seconds_bucket", "vigil_report_database_seconds_sum"} <= names


def test_with_a_metrics_token_only_its_bearer_may_scrape(settings) -> None:
    settings.VIGIL_METRICS_TOKEN = "scrape-me"

    answers = [
        Client().get("/metrics").status_code,
        Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code,
        Client().get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code,
    ]

    assert answers == [403, 403, 200]


def test_in_production_without_a_token_metrics_are_refused(settings) -> None:
    settings.VIGIL_PRODUCTION = True
    settings.VIGIL_METRICS_TOKEN = ""

    response = Client().get("/metrics", secure=True)

    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


def test_in_multiprocess_mode_a_scrape_adds_up_every_process_of_the_pod(tmp_path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from dashboard import metrics; metrics.report_received(format_name='grype', stream='scan', event=False, failed=False)"
    show = "import sys; from dashboard import metrics; sys.stdout.write(metrics.exposition().decode())"
    for _ in range(2):  # two gunicorn workers, say
        subprocess.run([sys.executable, "-c", count], cwd=ROOT, env=env, check=True, timeout=60)

    out = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True).stdout

    assert 'vigil_reports_received_total{format="grype",stream="scan"} 2.0' in out
