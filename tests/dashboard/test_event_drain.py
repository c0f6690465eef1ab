"""One events task per burst of alerts: it clears its sender's pending mark, then claims that sender's queued
alerts a batch at a time until none is left; a sender that keeps sending is handed over to a new task."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Sum

from dashboard.ingest import claim, publish
from dashboard.ingest.receive import report_submit
from dashboard.models import Finding, Report, ReportStatus
from dashboard.services.tokens import token_create
from tests.dashboard.test_event_batches import alert
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    token, _ = token_create(team=TeamFactory(slug="payments"), name="falcosidekick")
    return token


@pytest.fixture
def published(settings, monkeypatch) -> list[tuple[str, list[str]]]:
    """Tasks published to a private events queue (the marks are named after it), recorded instead of sent."""
    events_queue = f"vigil-test-{uuid.uuid4().hex[:8]}-events"
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, publish.TASKS.PROCESS_EVENTS: {"queue": events_queue}}
    sent: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(publish, "publish_task", lambda name, args, *, queue: sent.append((name, args)) or "task-id")
    return sent


def queue(token, numbers: range) -> list[Report]:
    return [report_submit(data=alert(n), token=token, enqueue_now=False)[0] for n in numbers]


def test_one_task_applies_every_queued_alert_of_its_sender_in_batches(token, monkeypatch) -> None:
    monkeypatch.setattr(claim, "EVENT_BATCH", 4)
    queued = queue(token, range(15))

    claim.events_process(queued[0].pk)

    assert set(Report.objects.values_list("status", "attempts")) == {(ReportStatus.DONE, 1)}
    assert Finding.objects.filter(source="falco").aggregate(total=Sum("occurrences"))["total"] == 15


def test_a_sender_that_keeps_sending_is_handed_over_to_a_new_task_for_its_oldest_queued_alert(token, monkeypatch, published) -> None:
    monkeypatch.setattr(claim, "EVENT_BATCH", 3)
    monkeypatch.setattr(claim, "EVENT_DRAIN_ROUNDS", 2)
    queued = queue(token, range(12))

    claim.events_process(queued[0].pk)

    left = list(Report.objects.filter(status=ReportStatus.QUEUED).order_by("received_at").values_list("pk", flat=True))
    assert len(left) == 12 - 3 - 2 * 2  # the first task's report with two taken along, then two rounds of two
    assert published == [(publish.TASKS.PROCESS_EVENTS, [str(left[0]), ""])]


def test_an_alert_stored_while_its_senders_task_is_pending_is_not_published(token, published, require_redis_broker) -> None:
    first, second = queue(token, range(2))
    key = claim.events_pending_key(first)

    sent = [publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, [str(r.pk)], key=key, seconds=60) for r in (first, second)]
    publish.pending_clear(key)
    after_start = publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, [str(second.pk)], key=key, seconds=60)
    publish.pending_clear(key)

    assert (sent, after_start) == ([True, False], True)
    assert published == [(publish.TASKS.PROCESS_EVENTS, [str(first.pk)]), (publish.TASKS.PROCESS_EVENTS, [str(second.pk)])]


def test_a_failed_publish_clears_the_mark_so_the_next_alert_publishes(token, published, monkeypatch) -> None:
    first, second = queue(token, range(2))
    key = claim.events_pending_key(first)

    def broker_down(name, args, *, queue):
        raise ConnectionError("broker down")

    with monkeypatch.context() as down:
        down.setattr(publish, "publish_task", broker_down)
        with pytest.raises(ConnectionError):
            publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, [str(first.pk)], key=key, seconds=60)
    published_after = publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, [str(second.pk)], key=key, seconds=60)
    publish.pending_clear(key)

    assert (published_after, published) == (True, [(publish.TASKS.PROCESS_EVENTS, [str(second.pk)])])


def test_a_task_whose_report_an_earlier_batch_applied_still_drains_the_senders_queue(token, published) -> None:
    first, *rest = queue(token, range(5))
    claim.report_process(first.pk)  # applies the five, recording their stream as applied (runtime)
    later = queue(token, range(5, 8))
    key, args = claim.events_pending_key(later[0]), [str(later[0].pk), ""]
    publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, args, key=key, seconds=60)

    claim.events_process(rest[0].pk, "")
    sent_after = publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, args, key=key, seconds=60)
    publish.pending_clear(key)

    assert Report.objects.get(pk=rest[0].pk).stream == "runtime"
    assert set(Report.objects.values_list("status", flat=True)) == {ReportStatus.DONE}
    assert sent_after is True  # the mark set when the later alerts were stored was cleared


def test_senders_have_marks_of_their_own(token) -> None:
    other, _ = token_create(team=TeamFactory(slug="shop"), name="falcosidekick")
    ours, theirs = queue(token, range(1)) + queue(other, range(1, 2))
    again = Report.objects.get(pk=ours.pk)

    assert claim.events_pending_key(ours) == claim.events_pending_key(again) != claim.events_pending_key(theirs)
