"""Retention of event reports (one alert or denial each): finished ones older than VIGIL_EVENT_REPORT_RETENTION_DAYS
go with their payloads, in batches, unless something still names them; scan reports and unfinished reports stay."""

from __future__ import annotations

import datetime as dt
import json
import runpy
import uuid
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django.db.models import CASCADE, SET_NULL
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from dashboard.ingest.receive import report_submit
from dashboard.models import (
    AdmissionRepeat,
    EventSighting,
    Finding,
    GateDecision,
    LifecycleScope,
    Report,
    ReportPayload,
    ReportStatus,
    Role,
)
from dashboard.models.reports import EVENT_REPORT_FORMATS
from dashboard.services.retention import KEPT_WHILE_NAMED, Pruned, prune_event_reports, retention_prune
from scanners import registry
from tests.conftest import fixture_bytes
from tests.factories import (
    EventSightingFactory,
    FindingEventFactory,
    FindingFactory,
    GateDecisionFactory,
    MembershipFactory,
    ReportFactory,
    ReportPayloadFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
ALERT = json.loads(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0])
SETTINGS = Path(__file__).resolve().parents[2] / "vigil" / "settings.py"


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def event_report(received: dt.datetime, *, format: str = "falco", status: str = ReportStatus.DONE, **fields) -> Report:
    report = ReportFactory(format=format, status=status, received_at=received, observed_at=received, **fields)
    ReportPayloadFactory(report=report)
    return report


def alert_bytes(moment: dt.datetime) -> bytes:
    """The same runtime alert (same rule, pod and image: one finding) raised at ``moment``."""
    return json.dumps({**ALERT, "uuid": str(uuid.uuid4()), "time": moment.isoformat()}).encode()


@pytest.fixture(autouse=True)
def _retention(settings) -> None:
    settings.VIGIL_RAW_RETENTION_DAYS = 30
    settings.VIGIL_SIGHTING_RETENTION_DAYS = 400
    settings.VIGIL_EVENT_REPORT_RETENTION_DAYS = 400


def test_old_finished_event_reports_go_with_their_payloads_in_batches_and_pruning_again_deletes_nothing(settings) -> None:
    settings.VIGIL_RAW_RETENTION_DAYS = 1000  # the payloads go with their reports, not by their own age
    finished = (ReportStatus.DONE, ReportStatus.FAILED)
    old = [event_report(days_ago(401), format=name, status=status) for name in EVENT_REPORT_FORMATS for status in finished]
    young = event_report(days_ago(399))
    counted = REGISTRY.get_sample_value("vigil_retention_pruned_total", {"kind": "reports"}) or 0.0

    first = retention_prune(now=NOW, batch=3)
    again = retention_prune(now=NOW, batch=3)

    assert (first.reports, again) == (len(old), Pruned())
    assert REGISTRY.get_sample_value("vigil_retention_pruned_total", {"kind": "reports"}) - counted == len(old)
    assert list(Report.objects.values_list("pk", flat=True)) == [young.pk]
    assert list(ReportPayload.objects.values_list("report_id", flat=True)) == [young.pk]


@pytest.mark.parametrize("status", [ReportStatus.QUEUED, ReportStatus.PROCESSING])
def test_an_event_report_a_worker_has_not_finished_stays_whatever_its_age(status: str) -> None:
    waiting = event_report(days_ago(900), status=status)

    assert retention_prune(now=NOW).reports == 0
    assert list(ReportPayload.objects.values_list("report_id", flat=True)) == [waiting.pk]


@pytest.mark.parametrize(("format", "stream"), [("trivy", "scan"), ("kyverno", "admission"), ("gatekeeper", "admission"), ("", "")])
def test_scan_and_policy_snapshot_reports_are_never_pruned(format: str, stream: str) -> None:
    snapshot = ReportFactory(format=format, stream=stream, received_at=days_ago(2000), observed_at=days_ago(2000))

    assert retention_prune(now=NOW).reports == 0
    assert list(Report.objects.values_list("pk", flat=True)) == [snapshot.pk]


def _sighting(report: Report) -> None:
    EventSightingFactory(report=report, seen_at=days_ago(10))


def _finding_event(report: Report) -> None:
    FindingEventFactory(report=report, created_at=report.received_at)


def _last_report(report: Report) -> None:
    FindingFactory(last_report=report)


def _scope(report: Report) -> None:
    LifecycleScope.objects.create(key="runtime|falco|payments/api", last_report=report)


def _repeat(report: Report) -> None:
    AdmissionRepeat.objects.create(report=report, at=NOW)  # not flushed yet (beat was down): the flush needs it


@pytest.mark.parametrize("name_it", [_sighting, _finding_event, _last_report, _scope, _repeat])
def test_an_old_event_report_something_still_names_stays_and_the_next_one_goes(name_it) -> None:
    named, free = event_report(days_ago(500)), event_report(days_ago(450))
    name_it(named)

    assert prune_event_reports(now=NOW, days=400, batch=1) == 1
    assert list(Report.objects.values_list("pk", flat=True)) == [named.pk]
    assert not Report.objects.filter(pk=free.pk).exists()


def test_every_reference_that_keeps_an_event_report_is_one_kept_while_named() -> None:
    """A new foreign key to Report either lets go of a pruned report (SET_NULL) or is listed to keep it."""
    references = {
        (field.related_model, field.field.name): field.on_delete
        for field in Report._meta.get_fields(include_hidden=True)
        if field.auto_created and not field.concrete
    }
    holding = {ref for ref, on_delete in references.items() if on_delete is not SET_NULL} - {(ReportPayload, "report")}

    assert holding <= set(KEPT_WHILE_NAMED)
    assert references[(ReportPayload, "report")] is CASCADE
    assert set(KEPT_WHILE_NAMED) <= set(references)


def test_a_sighting_past_its_retention_frees_its_report_in_the_same_run() -> None:
    report = event_report(days_ago(420))
    EventSightingFactory(report=report, seen_at=days_ago(420))

    pruned = retention_prune(now=NOW)

    assert (pruned.sightings, pruned.reports) == (1, 1)
    assert (EventSighting.objects.count(), Report.objects.count()) == (0, 0)


def test_a_gate_decision_naming_a_pruned_report_stays_without_it() -> None:
    report = event_report(days_ago(401))
    decision = GateDecisionFactory(report=report, created_at=days_ago(401))

    assert retention_prune(now=NOW).reports == 1
    assert GateDecision.objects.filter(pk=decision.pk).values_list("report_id", "decision").get() == (None, decision.decision)


def test_a_batch_of_event_reports_is_deleted_in_the_same_number_of_queries_whatever_its_size() -> None:
    queries = []
    for count in (2, 6):
        for _ in range(count):
            event_report(days_ago(401))
        with CaptureQueriesContext(connection) as captured:
            assert prune_event_reports(now=NOW, days=400, batch=10) == count
        queries.append(len(captured))

    assert queries[0] == queries[1]


def test_the_report_formats_retention_walks_are_the_registrys_event_formats() -> None:
    assert EVENT_REPORT_FORMATS == sorted(registry.EVENT_FORMATS)


def test_event_reports_are_kept_as_long_as_sightings_unless_set_longer(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_SIGHTING_RETENTION_DAYS", "90")
    monkeypatch.delenv("VIGIL_EVENT_REPORT_RETENTION_DAYS", raising=False)
    default = runpy.run_path(str(SETTINGS))["VIGIL_EVENT_REPORT_RETENTION_DAYS"]
    monkeypatch.setenv("VIGIL_EVENT_REPORT_RETENTION_DAYS", "120")
    longer = runpy.run_path(str(SETTINGS))["VIGIL_EVENT_REPORT_RETENTION_DAYS"]

    assert (default, longer) == (90, 120)


def test_an_event_report_retention_shorter_than_the_sightings_is_refused_at_startup(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_SIGHTING_RETENTION_DAYS", "90")
    monkeypatch.setenv("VIGIL_EVENT_REPORT_RETENTION_DAYS", "30")

    refused = r"VIGIL_EVENT_REPORT_RETENTION_DAYS \(30\) must be at least VIGIL_SIGHTING_RETENTION_DAYS \(90\)"
    with pytest.raises(RuntimeError, match=refused):
        runpy.run_path(str(SETTINGS))


def test_real_alerts_past_retention_leave_the_finding_its_count_and_the_report_its_history_links_to(
    client, django_capture_on_commit_callbacks
) -> None:
    team = TeamFactory(slug="payments")
    reports = []
    for age in (500, 450, 420, 10):
        moment = days_ago(age)
        with mock.patch("django.utils.timezone.now", return_value=moment), django_capture_on_commit_callbacks(execute=True):
            reports.append(report_submit(data=alert_bytes(moment), team_slug="payments", format_name="falco")[0])
    first, second, third, latest = reports
    finding = Finding.objects.get(team=team)

    with mock.patch("django.utils.timezone.now", return_value=NOW):
        pruned = retention_prune()
    client.force_login(MembershipFactory(team=team, role=Role.MEMBER).user)
    page = client.get(f"/findings/{finding.pk}/").content.decode()
    listed = client.get(f"/api/v1/findings/?report={second.pk}").json()

    assert (pruned.sightings, pruned.reports) == (3, 2)
    assert set(Report.objects.values_list("pk", flat=True)) == {first.pk, latest.pk}
    assert Finding.objects.values_list("pk", "occurrences", "last_report_id").get() == (finding.pk, 4, latest.pk)
    assert Finding.objects.values_list("first_report_id", flat=True).get() == first.pk
    assert f'href="/reports/{first.pk}/"' in page
    assert client.get(f"/reports/{third.pk}/").status_code == 404
    assert listed["count"] == 0
