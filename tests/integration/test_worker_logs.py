"""A real Celery worker with VIGIL_LOG_FORMAT=json: its lines are JSON objects, and the lines of a report's processing
name the task, the report and the request that queued it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.ingest.receive import report_submit
from dashboard.log_context import bound
from dashboard.models import Report, ReportStatus
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory
from tests.integration.drills import wait_for

ROOT = Path(__file__).resolve().parents[2]
ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")


@pytest.fixture
def json_worker(broker_url: str, postgres_url: str, settings, tmp_path: Path) -> Iterator[Path]:
    queue = f"vigil-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.CELERY_TASK_ROUTES = {}
    env = {**os.environ, "DATABASE_URL": postgres_url, "CELERY_BROKER_URL": broker_url, "VIGIL_CELERY_QUEUE": queue}
    env |= {"VIGIL_LOG_FORMAT": "json", "VIGIL_DB_CONN_MAX_AGE": "0"}
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "vigil", "worker", "-Q", queue, "--pool", "solo", "--without-gossip"]
    worker = subprocess.Popen([*argv, "--without-mingle", "-l", "info", "-f", str(log)], cwd=ROOT, env=env)
    try:
        wait_for(lambda: (log.exists() and " ready." in log.read_text()) or worker.poll() is not None, timeout=60, what="the worker")
        yield log
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_report_processed_by_the_worker_logs_json_lines_with_its_task_report_and_request_ids(json_worker: Path) -> None:
    TeamFactory(slug="payments")
    with bound(request_id="ci-run-7"):
        report, _ = report_submit(data=ALPINE, team_slug="payments")
    wait_for(lambda: Report.objects.get(pk=report.pk).status == ReportStatus.DONE, timeout=60, what="the report to be done")
    time.sleep(0.5)  # the worker writes its "succeeded" line after the report's commit

    lines = [json.loads(line) for line in json_worker.read_text().splitlines() if line.strip()]
    succeeded = [line for line in lines if "succeeded" in line["message"]]

    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert [(line["report_id"], line["request_id"], bool(line["task_id"])) for line in succeeded] == [(str(report.pk), "ci-run-7", True)]
