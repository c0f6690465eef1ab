"""One task applies a batch of queued event reports (Falco alerts) in one transaction; counts stay per report."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.ingest import claim
from dashboard.ingest.apply import close_findings
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import EventSighting, Finding, FindingEvent, FindingOccurrence, Report, TriageRule
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory, TriageRuleFactory

pytestmark = pytest.mark.django_db

TEMPLATE = json.loads(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0])
WORKLOADS = ["api-7d9f8b6c5", "worker-5c8d7f9b4", "web-6b7c8d9f5"]
NEW = {"new": 1, "reopened": 0, "unchanged": 0, "fixed": 0}
SEEN = {"new": 0, "reopened": 0, "unchanged": 1, "fixed": 0}


def alert(number: int, *, images: int = 1, tag: str = "1.4.1", **changes: object) -> bytes:
    """Alert ``number`` from workload ``number % 3`` (one finding per workload), each with its own uuid;
    with ``images=3`` each workload runs its own image (its own lifecycle scope)."""
    body = {**TEMPLATE, "uuid": f"00000000-0000-4000-8000-{number:012d}", **changes}
    body["output_fields"] = {
        **TEMPLATE["output_fields"],
        "k8s.pod.name": f"{WORKLOADS[number % 3]}-{'bcdfghjklm'[number % 10]}x2x4",
        "container.image.repository": f"registry.example.com/payments/app{number % 3 % images}",
        "container.image.tag": tag,
        "evt.time": number,
    }
    return json.dumps(body).encode()


@pytest.fixture
def token():
    token, _ = token_create(team=TeamFactory(slug="payments"), name="falcosidekick")
    return token


def queue(token, bodies: list[bytes], image: str = "") -> list[Report]:
    return [report_submit(data=body, token=token, image=image, enqueue_now=False)[0] for body in bodies]


def occurrences() -> int:
    return Finding.objects.filter(source="falco").aggregate(total=Sum("occurrences"))["total"]


def test_one_task_applies_every_queued_alert_of_the_sender_with_exact_counts(token) -> None:
    queued = queue(token, [alert(n) for n in range(12)])

    report_process(queued[0].pk)

    done = list(Report.objects.order_by("received_at").values_list("status", "attempts", "counts", "format", "stream"))
    assert done == [("done", 1, NEW if n < 3 else SEEN, "falco", "runtime") for n in range(12)]
    assert Finding.objects.filter(source="falco").count() == 3
    assert occurrences() == 12


def test_a_report_standing_for_several_events_counts_each_alone_and_in_a_batch(token) -> None:
    """Report.occurrences (Vigil's own: a minute's repeats of one admission event, services/admission_repeats.py)."""
    lone = report_submit(data=alert(0), token=token, format_name="falco", occurrences=4, enqueue_now=False)[0]
    report_process(lone.pk)
    alone = occurrences()
    queued = [report_submit(data=alert(n), token=token, format_name="falco", occurrences=n, enqueue_now=False)[0] for n in (1, 2, 3)]

    report_process(queued[0].pk)

    assert (alone, occurrences(), Report.objects.get(pk=lone.pk).counts) == (4, 10, NEW)


@pytest.mark.parametrize(
    ("format_name", "count"), [("falco", 0), ("falco", -2), ("trivy", 2), ("", 2)], ids=["zero", "negative", "scan", "undeclared"]
)
def test_only_vigil_sets_a_count_of_events_of_a_declared_event_format(token, format_name: str, count: int) -> None:
    with pytest.raises(ApplicationError) as refused:
        report_submit(data=alert(0), token=token, format_name=format_name, occurrences=count, enqueue_now=False)

    assert (refused.value.code, Report.objects.count()) == ("invalid_occurrences", 0)


def test_the_task_of_a_report_applied_in_a_batch_does_nothing(token) -> None:
    queued = queue(token, [alert(n) for n in range(4)])
    report_process(queued[0].pk)

    assert report_process(queued[2].pk) is None

    assert Report.objects.get(pk=queued[2].pk).attempts == 1
    assert occurrences() == 4


def test_reports_sent_otherwise_are_left_to_their_own_tasks(token) -> None:
    batch = queue(token, [alert(n) for n in range(3)])
    other_image = queue(token, [alert(3)], image="registry.example.com/payments/api:1.4.2")[0]

    report_process(batch[0].pk)

    assert Report.objects.get(pk=other_image.pk).status == "queued"
    assert occurrences() == 3


def test_an_alert_that_does_not_parse_fails_alone(token, settings) -> None:
    settings.VIGIL_VALIDATE_SYNC_BYTES = 0  # only the cheap checks before queueing: the broken alert is accepted
    queued = queue(token, [alert(0), alert(1), alert(2, tags="shell"), alert(3), alert(4)])

    report_process(queued[0].pk)

    statuses = list(Report.objects.order_by("received_at").values_list("status", "error"))
    assert statuses == [("done", ""), ("done", ""), ("failed", "alert: tags is not a list"), ("done", ""), ("done", "")]
    assert occurrences() == 4


def test_an_alert_that_cannot_be_applied_fails_alone_and_the_others_are_applied_one_by_one(token, monkeypatch) -> None:
    queued = queue(token, [alert(n) for n in range(5)])
    apply_batch = claim.apply_events.apply_event_reports

    def apply_batch_or_break(reports):
        if queued[3].pk in {event.report.pk for event in reports}:
            raise RuntimeError("broken")
        return apply_batch(reports)

    monkeypatch.setattr(claim.apply_events, "apply_event_reports", apply_batch_or_break)

    report_process(queued[0].pk)

    rows = list(Report.objects.order_by("received_at").values_list("status", "counts", "error"))
    empty = {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert rows[3] == ("failed", empty, "internal error while applying the report (RuntimeError); the report is kept")
    assert [row[:2] for row in rows[:3] + rows[4:]] == [("done", NEW), ("done", NEW), ("done", NEW), ("done", SEEN)]
    assert occurrences() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
def test_concurrent_tasks_with_overlapping_batches_apply_every_alert_exactly_once(token, monkeypatch) -> None:
    monkeypatch.setattr(claim, "EVENT_BATCH", 6)  # several batches, over three scopes, at the same time
    queued = queue(token, [alert(n, images=3) for n in range(60)])

    def deliver(report_id: object) -> None:
        try:
            report_process(report_id)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(deliver, [report.pk for report in reversed(queued)]))  # re-raises what a task raised

    rows = list(Report.objects.values_list("status", "counts"))
    assert {status for status, _ in rows} == {"done"}
    assert sum(counts["new"] for _, counts in rows) == 3
    assert sum(counts["unchanged"] for _, counts in rows) == 57
    assert occurrences() == 60


def test_every_report_of_a_batch_is_triaged_as_it_is_applied(token) -> None:
    TriageRuleFactory(team=token.team, action=TriageRule.Action.FALSE_POSITIVE, match_rule_id="Terminal shell*", reason="debug shells")
    queued = queue(token, [alert(n) for n in range(9)])

    report_process(queued[0].pk)

    findings = Finding.objects.filter(source="falco")
    assert sorted(findings.values_list("status", "occurrences")) == [("false_positive", 3)] * 3
    events = FindingEvent.objects.filter(finding__in=findings, triage_rule__isnull=False)
    assert sorted(events.values_list("type", "to_status")) == [("status", "false_positive")] * 3


def test_a_batch_costs_the_same_queries_whatever_its_number_of_alerts(token, require_postgres) -> None:
    """A batch is applied as one (dashboard/ingest/apply_events.py): its findings read and written, their occurrences,
    events and report rows, scopes, images, sightings and nudges, each once for the batch."""
    report_process(queue(token, [alert(n) for n in range(3)])[0].pk)  # the three findings exist
    small = queue(token, [alert(n) for n in range(10, 20)])
    with CaptureQueriesContext(connections["default"]) as ten:
        report_process(small[0].pk)
    large = queue(token, [alert(n) for n in range(20, 40)])
    with CaptureQueriesContext(connections["default"]) as twenty:
        report_process(large[0].pk)

    assert len(twenty.captured_queries) == len(ten.captured_queries)
    assert Report.objects.filter(pk__in=[report.pk for report in small + large], status="done").count() == 30


def test_every_alert_of_a_batch_is_a_sighting_for_the_nudges(token) -> None:
    queued = queue(token, [alert(n) for n in range(12)])

    report_process(queued[0].pk)

    sightings = EventSighting.objects.values_list("report_id", "finding__details__k8s.pod.name")
    assert len(sightings) == 12
    assert {report_id for report_id, _ in sightings} == {report.pk for report in queued}


def _scenario(token, start: dt.datetime) -> list[Report]:
    """Alert 0 applied alone, its finding fixed by hand; then 15 reports of 16 alerts queued at known times: three workloads
    (three images), two image tags, a priority that changes (new content) and a duplicate inside one report."""
    report_process(report_submit(data=alert(0), token=token, observed_at=start, enqueue_now=False)[0].pk)
    close_findings(ids=list(Finding.objects.values_list("pk", flat=True)), report=None, now=start, reason="fixed by hand")
    bodies = [
        alert(n, images=3, tag="1.5.0" if n > 6 else "1.4.1", **({"priority": "Critical"} if n in (5, 8) else {})) for n in range(1, 15)
    ]
    bodies.append(json.dumps([json.loads(alert(15, images=3)), json.loads(alert(18, images=3))]).encode())  # two alerts, one POST
    return [
        report_submit(data=body, token=token, observed_at=start + dt.timedelta(minutes=n + 1), enqueue_now=False)[0]
        for n, body in enumerate(bodies)
    ]


def _state() -> tuple[list[object], ...]:
    findings = Finding.objects.order_by("fingerprint").values_list(
        "fingerprint",
        "status",
        "severity",
        "occurrences",
        "first_seen",
        "last_seen",
        "status_changed_at",
        "due_date",
        "last_report__observed_at",
        "first_report__observed_at",
        "description",
        "details",
        "content_hash",
        "scope_key",
        "team_id",
        "image_id",
        "risk_score",
    )
    occurrences = FindingOccurrence.objects.order_by("finding__fingerprint", "tag", "workload").values_list(
        "finding__fingerprint", "tag", "digest", "workload", "first_seen", "last_seen"
    )
    events = FindingEvent.objects.order_by("finding__fingerprint", "created_at", "type").values_list(
        "finding__fingerprint", "type", "from_status", "to_status", "report__observed_at", "created_at"
    )
    reports = Report.objects.order_by("observed_at").values_list("status", "counts", "findings_total", "image__repository", "format")
    sightings = EventSighting.objects.order_by("report__observed_at", "finding__fingerprint").values_list(
        "report__observed_at", "finding__fingerprint"
    )
    return list(findings), list(occurrences), list(events), list(reports), list(sightings)


def test_a_batch_applied_as_one_ends_where_applying_its_reports_one_by_one_ends(token, monkeypatch) -> None:
    start = timezone.now() - dt.timedelta(hours=2)
    queued = _scenario(token, start)
    report_process(queued[0].pk)
    batched = _state()
    Report.objects.all().delete()  # findings, their events, occurrences and sightings go with them
    Finding.objects.all().delete()
    monkeypatch.setattr(claim, "EVENT_BATCH", 1)  # every report applied alone, as a batch of one
    queued = _scenario(token, start)
    for report in queued:
        report_process(report.pk)

    assert batched == _state()
    reports = [(counts["new"], counts["reopened"], counts["unchanged"], total) for _, counts, total, *_ in batched[3]]
    assert reports == [(1, 0, 0, 1)] * 3 + [(0, 1, 0, 1)] + [(0, 0, 1, 1)] * 12  # alert 3 reopens alert 0's finding
    assert sum(finding[3] for finding in batched[0]) == 17
