"""Every task lands on its queue: scan reports on reports, event reports on events, the rest on maintenance."""

from __future__ import annotations

import uuid

import pytest
from celery import current_app
from django.conf import settings as django_settings

import dashboard.tasks
from dashboard.ingest import receive
from dashboard.ingest.receive import report_submit
from dashboard.models import Report, ReportStatus
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")
ALERT = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0]


@pytest.fixture
def private_queues(settings) -> dict[str, str]:
    """The three queues under a private prefix on the broker (Redis in CI), as VIGIL_CELERY_QUEUE_PREFIX names them."""
    prefix = f"vigil-test-{uuid.uuid4().hex[:8]}-"
    queues = {name: prefix + name for name in ("reports", "events", "maintenance")}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queues["maintenance"]
    settings.CELERY_TASK_ROUTES = {
        receive.PROCESS_TASK: {"queue": queues["reports"]},
        receive.EVENTS_TASK: {"queue": queues["events"]},
    }
    TeamFactory(slug="payments")
    yield queues
    with current_app.connection_for_write() as conn:
        for queue in queues.values():
            conn.default_channel.queue_delete(queue)


def _task_names_on(queue: str) -> list[str]:
    names = []
    with current_app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(queue, no_ack=True)) is not None:
            names.append(message.headers["task"])
    return names


def test_a_scan_goes_to_the_reports_queue_and_an_undeclared_falco_alert_to_the_events_queue(
    private_queues, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report_submit(data=ALPINE, team_slug="payments")
        report_submit(data=ALERT, team_slug="payments")

    assert (_task_names_on(private_queues["reports"]), _task_names_on(private_queues["events"])) == (
        ["vigil.reports.process"],
        ["vigil.events.process"],
    )


def test_a_report_declared_as_runtime_goes_to_the_events_queue(private_queues, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        report_submit(data=ALERT, team_slug="payments", format_name="falco", stream="runtime")

    assert _task_names_on(private_queues["events"]) == ["vigil.events.process"]


def test_the_sweeper_re_enqueues_each_stuck_report_on_its_own_queue(private_queues) -> None:
    scan, _ = report_submit(data=ALPINE, team_slug="payments", enqueue_now=False)
    alert, _ = report_submit(data=ALERT, team_slug="payments", format_name="falco", enqueue_now=False)
    Report.objects.filter(pk__in=[scan.pk, alert.pk]).update(status=ReportStatus.QUEUED)

    receive.report_sweep(older_than_seconds=0)

    assert (_task_names_on(private_queues["reports"]), _task_names_on(private_queues["events"])) == (
        ["vigil.reports.process"],
        ["vigil.events.process"],
    )


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("vigil.reports.process", "reports"),
        ("vigil.events.process", "events"),
        *[(entry["task"], "maintenance") for entry in django_settings.CELERY_BEAT_SCHEDULE.values()],
        ("vigil.ownership.reassign", "maintenance"),
    ],
)
def test_celery_routes_each_task_as_beat_and_retries_publish_it(task, queue) -> None:
    assert current_app.amqp.router.route({}, task)["queue"].name == queue


def test_every_task_the_worker_knows_has_a_queue_of_the_three() -> None:
    ours = sorted(task.name for task in vars(dashboard.tasks).values() if hasattr(task, "delay"))

    assert {current_app.amqp.router.route({}, name)["queue"].name for name in ours} == {"reports", "events", "maintenance"}
