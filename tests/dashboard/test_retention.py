"""Retention: raw payloads go after VIGIL_RAW_RETENTION_DAYS (the report stays and says so), occurrences and event
sightings are bounded, in batches, and pruning twice deletes nothing more."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from dashboard.ingest.receive import report_submit
from dashboard.models import AdmissionRepeat, EventSighting, Finding, FindingOccurrence, Report, ReportPayload, ReportStatus, Role
from dashboard.services.retention import Pruned, retention_prune
from tests.conftest import fixture_bytes
from tests.factories import (
    EventSightingFactory,
    FindingFactory,
    FindingOccurrenceFactory,
    MembershipFactory,
    ReportFactory,
    ReportPayloadFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def payload_of(status: str, received: dt.datetime) -> Report:
    report = ReportFactory(status=status, received_at=received, observed_at=received)
    ReportPayloadFactory(report=report)
    return report


@pytest.fixture(autouse=True)
def _retention(settings) -> None:
    settings.VIGIL_RAW_RETENTION_DAYS = 30
    settings.VIGIL_OCCURRENCE_RETENTION_DAYS = 180
    settings.VIGIL_SIGHTING_RETENTION_DAYS = 400


def test_old_payloads_of_finished_reports_go_in_batches_and_their_reports_stay_marked() -> None:
    old = [payload_of(status, days_ago(31)) for status in (ReportStatus.DONE, ReportStatus.DONE, ReportStatus.FAILED)]
    young = payload_of(ReportStatus.DONE, days_ago(29))
    waiting = payload_of(ReportStatus.QUEUED, days_ago(90))  # a worker still needs its bytes

    counted = REGISTRY.get_sample_value("vigil_retention_pruned_total", {"kind": "payloads"}) or 0.0

    first = retention_prune(now=NOW, batch=2)
    again = retention_prune(now=NOW, batch=2)

    assert (first.payloads, again) == (3, Pruned())
    assert REGISTRY.get_sample_value("vigil_retention_pruned_total", {"kind": "payloads"}) - counted == 3
    assert set(ReportPayload.objects.values_list("report_id", flat=True)) == {young.pk, waiting.pk}
    assert Report.objects.count() == 5
    assert {r.pk: r.payload_pruned_at for r in Report.objects.filter(payload_pruned_at__isnull=False)} == {r.pk: NOW for r in old}


def test_the_payload_of_a_report_an_admission_repeat_names_stays_for_the_flush_to_store_again() -> None:
    repeated, free = payload_of(ReportStatus.DONE, days_ago(31)), payload_of(ReportStatus.DONE, days_ago(31))
    AdmissionRepeat.objects.create(report=repeated, at=NOW)

    assert retention_prune(now=NOW).payloads == 1
    assert list(ReportPayload.objects.values_list("report_id", flat=True)) == [repeated.pk]
    assert Report.objects.get(pk=free.pk).payload_pruned_at == NOW


def test_occurrences_not_seen_for_the_retention_go_except_each_findings_most_recent() -> None:
    finding, quiet = FindingFactory(), FindingFactory()
    for tag, seen in (("1.0", 400), ("1.1", 200), ("1.2", 10)):
        FindingOccurrenceFactory(finding=finding, tag=tag, first_seen=days_ago(seen), last_seen=days_ago(seen))
    for tag, seen in (("0.9", 500), ("0.8", 300)):
        FindingOccurrenceFactory(finding=quiet, tag=tag, first_seen=days_ago(seen), last_seen=days_ago(seen))

    pruned = retention_prune(now=NOW, batch=1)

    assert pruned.occurrences == 3
    assert sorted(FindingOccurrence.objects.values_list("finding_id", "tag")) == sorted([(finding.pk, "1.2"), (quiet.pk, "0.8")])


def test_event_sightings_older_than_their_retention_go() -> None:
    finding = FindingFactory()
    old = EventSightingFactory(finding=finding, seen_at=days_ago(401))
    kept = EventSightingFactory(finding=finding, seen_at=days_ago(399))

    assert retention_prune(now=NOW).sightings == 1
    assert list(EventSighting.objects.values_list("pk", flat=True)) == [kept.pk]
    assert Report.objects.filter(pk=old.report_id).exists()


def test_a_real_scan_past_retention_keeps_its_findings_and_its_page_says_the_payload_was_pruned(
    client, django_capture_on_commit_callbacks
) -> None:
    team = TeamFactory(slug="payments")
    with django_capture_on_commit_callbacks(execute=True):
        report, _ = report_submit(data=ALPINE, team_slug="payments")  # processed in-process after the commit
    Report.objects.filter(pk=report.pk).update(received_at=timezone.now() - dt.timedelta(days=31))
    findings = Finding.objects.filter(team=team).count()

    retention_prune()
    client.force_login(MembershipFactory(team=team, role=Role.MEMBER).user)
    page = client.get(f"/reports/{report.pk}/").content.decode()

    assert (Report.objects.get(pk=report.pk).status, findings > 0) == (ReportStatus.DONE, True)
    assert (ReportPayload.objects.filter(report=report).exists(), Finding.objects.filter(team=team).count()) == (False, findings)
    assert 'id="report-payload-pruned">pruned' in page
    assert "(kept 30 days)" in page
