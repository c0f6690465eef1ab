"""Log lines name their request, report or task: the middleware, the Celery signals, the JSON and text formats."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import task_postrun, task_prerun
from django.test import Client

import vigil.celery  # noqa: F401  (connects the signals under test)
from dashboard import tasks
from dashboard.log_context import ContextFilter, JsonFormatter, TextFormatter, bound
from dashboard.log_redaction import RedactSecrets

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "vgl_" + "A1b2C3d4" * 6


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the ``vigil.test`` logger writes, through the filters and the JSON format settings.LOGGING installs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("vigil.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.django_db
def test_a_request_keeps_a_sane_incoming_request_id_and_echoes_it() -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "edge-7f3a.2"})

    assert response["X-Request-ID"] == "edge-7f3a.2"


@pytest.mark.django_db
def test_a_request_without_one_or_with_text_instead_of_an_id_gets_a_fresh_one() -> None:
    plain = Client().get("/healthz")["X-Request-ID"]
    hostile = Client().get("/healthz", headers={"X-Request-ID": 'a b"}{'})["X-Request-ID"]

    assert (len(plain), len(hostile), plain != hostile) == (32, 32, True)


def test_a_json_line_has_time_level_logger_message_and_the_bound_ids(lines) -> None:
    with bound(request_id="req-1", report_id="rep-2"):
        logging.getLogger("vigil.test").info("stored %s", "report")

    (line,) = parsed(lines)
    assert {key: line[key] for key in ("level", "logger", "message", "request_id", "report_id")} == {
        "level": "info",
        "logger": "vigil.test",
        "message": "stored report",
        "request_id": "req-1",
        "report_id": "rep-2",
    }
    assert line["time"].endswith("+00:00")


def test_a_json_line_never_holds_a_token_in_its_message_or_its_traceback(lines) -> None:
    try:
        raise ValueError(f"Authorization: Bearer {TOKEN}")
    except ValueError:
        logging.getLogger("vigil.test").exception("refused %s", TOKEN)

    text = lines.getvalue()
    assert (TOKEN in text, TOKEN[4:30] in text, "[redacted]" in parsed(lines)[0]["exception"]) == (False, False, True)


def test_the_text_format_puts_the_ids_after_the_message() -> None:
    record = logging.LogRecord("vigil.test", logging.INFO, __file__, 1, "done", None, None)
    record.task_id = "t-9"

    assert TextFormatter("%(levelname)s %(name)s %(message)s").format(record) == "INFO vigil.test done [task_id=t-9]"


def test_a_report_task_logs_with_its_task_and_report_ids_and_forgets_them_after(lines) -> None:
    task = tasks.process_report
    logger = logging.getLogger("vigil.test")

    task_prerun.send(sender=task, task_id="task-1", task=task, args=("report-1",), kwargs={})
    logger.info("processing")
    task_postrun.send(sender=task, task_id="task-1", task=task, args=("report-1",), kwargs={})
    logger.info("idle")

    first, second = parsed(lines)
    assert (first["task_id"], first["report_id"]) == ("task-1", "report-1")
    assert ("task_id" in second, "report_id" in second) == (False, False)


def test_a_maintenance_task_names_its_task_but_no_report(lines) -> None:
    task = tasks.sweep_reports

    task_prerun.send(sender=task, task_id="task-2", task=task, args=(), kwargs={})
    logging.getLogger("vigil.test").info("sweeping")
    task_postrun.send(sender=task, task_id="task-2", task=task, args=(), kwargs={})

    (line,) = parsed(lines)
    assert (line["task_id"], "report_id" in line) == ("task-2", False)


def _log_format_with(**env: str) -> subprocess.CompletedProcess[str]:
    show = "import django; django.setup(); from django.conf import settings; print(settings.VIGIL_LOG_FORMAT)"
    clean = {key: value for key, value in os.environ.items() if key not in ("VIGIL_LOG_FORMAT", "VIGIL_PRODUCTION")}
    environment = {**clean, "DJANGO_SETTINGS_MODULE": "vigil.settings", "VIGIL_SECRET_KEY": "k" * 50, **env}
    return subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def test_production_logs_json_by_default_and_development_text() -> None:
    formats = [_log_format_with(VIGIL_PRODUCTION="1").stdout.strip(), _log_format_with().stdout.strip()]

    assert formats == ["json", "text"]


def test_an_unknown_log_format_stops_the_process_at_start() -> None:
    started = _log_format_with(VIGIL_LOG_FORMAT="xml")

    assert (started.returncode, "VIGIL_LOG_FORMAT must be json or text" in started.stderr) == (1, True)
