"""Identity and lifecycle: upsert by fingerprint, close by absence within scope, reopen, hold."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.reportgen import trivy_bytes, trivy_report
from dashboard.ingest import receive
from dashboard.ingest.receive import report_confirm_closures
from dashboard.models import Finding, FindingEvent, Image, ImageVersion, Report, Role, Status, Team
from dashboard.services import intel
from tests.dashboard.ingest_helpers import ingest
from tests.factories import (
    EpssScoreFactory,
    ImageFactory,
    KevEntryFactory,
    MembershipFactory,
    TeamFactory,
    WorkloadSightingFactory,
)

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"


@pytest.fixture(autouse=True)
def team():
    return TeamFactory(slug="payments")


def without(report: dict, count: int) -> bytes:
    """The report with the first ``count`` OS-package vulnerabilities removed."""
    report = json.loads(json.dumps(report))
    report["Results"][0]["Vulnerabilities"] = report["Results"][0]["Vulnerabilities"][count:]
    return json.dumps(report).encode()


def test_importing_the_same_report_three_times_changes_nothing_after_the_first() -> None:
    data = trivy_bytes(40, image=IMAGE)
    first = ingest(data, team="payments")
    events = FindingEvent.objects.count()

    second = ingest(data, team="payments")
    third = ingest(data, team="payments")

    assert first.counts == {"new": 40, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert second.counts == third.counts == {"new": 0, "reopened": 0, "unchanged": 40, "fixed": 0}
    assert FindingEvent.objects.count() == events == 0  # a creation is recorded on the finding, not as an event
    assert Finding.objects.filter(first_report=first.pk).count() == 40
    assert Finding.objects.filter(status=Status.OPEN).count() == 40


def test_a_finding_absent_from_a_complete_report_is_fixed_with_the_report_as_reason() -> None:
    report = trivy_report(40, image=IMAGE)
    ingest(json.dumps(report).encode(), team="payments")

    later = ingest(without(report, 3), team="payments")

    assert later.counts == {"new": 0, "reopened": 0, "unchanged": 37, "fixed": 3}
    fixed = Finding.objects.filter(status=Status.FIXED)
    assert fixed.count() == 3
    assert set(FindingEvent.objects.filter(type="fixed").values_list("report_id", flat=True)) == {later.pk}


def test_a_finding_that_comes_back_reopens_with_its_history() -> None:
    report = trivy_report(40, image=IMAGE)
    ingest(json.dumps(report).encode(), team="payments")
    ingest(without(report, 2), team="payments")

    back = ingest(json.dumps(report).encode(), team="payments")

    assert back.counts == {"new": 0, "reopened": 2, "unchanged": 38, "fixed": 0}
    reopened = Finding.objects.get(rule_id=report["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"], package_path="")
    assert list(reopened.events.order_by("created_at", "id").values_list("type", flat=True)) == ["fixed", "reopened"]
    assert reopened.first_report_id == Report.objects.order_by("received_at").values_list("id", flat=True).first()
    assert reopened.status == Status.OPEN


def test_closing_more_than_half_of_a_scope_is_held_until_a_person_confirms() -> None:
    report = trivy_report(10, image=IMAGE)
    ingest(json.dumps(report).encode(), team="payments")

    risky = ingest(without(report, 6), team="payments")

    assert risky.counts["fixed"] == 0
    assert len(risky.held_closures) == 6
    assert Finding.objects.filter(status=Status.OPEN).count() == 10
    fixed = report_confirm_closures(report=risky, user=MembershipFactory(team=Team.objects.get(slug="payments"), role=Role.MEMBER).user)
    risky.refresh_from_db()
    assert fixed == 6
    assert risky.counts["fixed"] == 6 and risky.held_closures == []
    assert Finding.objects.filter(status=Status.FIXED).count() == 6


def test_a_failed_or_truncated_report_closes_nothing() -> None:
    data = trivy_bytes(20, image=IMAGE)
    ingest(data, team="payments")

    with pytest.raises(Exception, match="invalid JSON"):
        ingest(data[: len(data) // 2], team="payments")

    assert Finding.objects.filter(status=Status.OPEN).count() == 20


def test_a_report_of_another_image_never_closes_this_images_findings() -> None:
    ingest(trivy_bytes(20, image=IMAGE), team="payments")

    other = ingest(trivy_bytes(5, start=1000, image="registry.example.com/payments/worker"), team="payments")

    assert other.counts == {"new": 5, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert Finding.objects.filter(image__repository="payments/api", status=Status.OPEN).count() == 20


def test_tags_are_occurrences_so_the_same_finding_spans_tags() -> None:
    ingest(trivy_bytes(10, image=IMAGE, tag="1.4.1"), team="payments")

    second = ingest(trivy_bytes(10, image=IMAGE, tag="1.4.2"), team="payments")

    assert second.counts == {"new": 0, "reopened": 0, "unchanged": 10, "fixed": 0}
    assert Finding.objects.count() == 10
    assert sorted(Finding.objects.first().occurrence_set.values_list("tag", flat=True)) == ["1.4.1", "1.4.2"]


def test_upsert_uses_a_constant_number_of_queries_whatever_the_number_of_findings(require_postgres, monkeypatch) -> None:
    # SQLite caps statements at 999 variables, so only PostgreSQL shows the batch size Vigil chooses.
    # Both reports take the large-report path of the POST (a lookup by stable digest), whatever their size.
    monkeypatch.setattr(receive, "KNOWN_GOOD_BYTES", 0)
    with CaptureQueriesContext(connection) as small:
        ingest(trivy_bytes(50, image="registry.example.com/a/one"), team="payments")
    with CaptureQueriesContext(connection) as large:
        ingest(trivy_bytes(500, image="registry.example.com/a/two"), team="payments")
    with CaptureQueriesContext(connection) as again:
        ingest(trivy_bytes(500, image="registry.example.com/a/two"), team="payments")

    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(again.captured_queries) <= len(large.captured_queries)


def test_the_sweeper_takes_old_queued_reports_and_stalled_attempts_but_not_one_applying_now() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from dashboard.ingest.receive import report_submit, report_sweep
    from dashboard.models import Report, ReportStatus

    old = timezone.now() - timedelta(hours=2)
    queued, _ = report_submit(data=trivy_bytes(1, image=IMAGE), team_slug="payments", enqueue_now=False, deduplicate=False)
    stalled, _ = report_submit(data=trivy_bytes(2, image=IMAGE), team_slug="payments", enqueue_now=False, deduplicate=False)
    busy, _ = report_submit(data=trivy_bytes(3, image=IMAGE), team_slug="payments", enqueue_now=False, deduplicate=False)
    Report.objects.filter(pk=queued.pk).update(received_at=old)
    Report.objects.filter(pk=stalled.pk).update(received_at=old, status=ReportStatus.PROCESSING, started_at=old)
    Report.objects.filter(pk=busy.pk).update(received_at=old, status=ReportStatus.PROCESSING, started_at=timezone.now())

    swept = report_sweep(older_than_seconds=600)

    assert sorted(swept) == sorted([str(queued.pk), str(stalled.pk)])


def test_a_new_tag_of_an_unchanged_image_rewrites_no_finding() -> None:
    first = ingest(trivy_bytes(30, image=IMAGE, tag="1.4.1"), team="payments")

    second = ingest(trivy_bytes(30, image=IMAGE, tag="1.4.2"), team="payments")

    assert second.counts == {"new": 0, "reopened": 0, "unchanged": 30, "fixed": 0}
    assert set(Finding.objects.values_list("last_report_id", flat=True)) == {first.pk}
    assert not any("1.4.2" in str(details.get("target", "")) for details in Finding.objects.values_list("details", flat=True))


def test_a_changed_description_is_rewritten_and_the_rest_is_left_alone() -> None:
    report = trivy_report(30, image=IMAGE, tag="1.4.1")
    first = ingest(json.dumps(report).encode(), team="payments")
    changed_id = report["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"]
    report["Results"][0]["Vulnerabilities"][0]["Description"] = "rewritten upstream"

    second = ingest(json.dumps(report).encode(), team="payments")

    rewritten = Finding.objects.get(rule_id=changed_id)
    assert second.counts == {"new": 0, "reopened": 0, "unchanged": 30, "fixed": 0}
    assert (rewritten.description, rewritten.last_report_id) == ("rewritten upstream", second.pk)
    assert set(Finding.objects.exclude(pk=rewritten.pk).values_list("last_report_id", flat=True)) == {first.pk}
    assert Finding.objects.exclude(pk=rewritten.pk).filter(content_hash=rewritten.content_hash).count() == 0


def test_a_severity_set_by_a_rule_survives_a_re_import_of_the_same_content() -> None:
    report = trivy_bytes(30, image=IMAGE, tag="1.4.1")
    ingest(report, team="payments")
    target = Finding.objects.exclude(severity="low").order_by("id").first()
    Finding.objects.filter(pk=target.pk).update(severity="low")  # as a set-severity triage rule leaves it

    again = ingest(trivy_bytes(30, image=IMAGE, tag="1.4.2"), team="payments")

    assert again.counts == {"new": 0, "reopened": 0, "unchanged": 30, "fixed": 0}
    assert Finding.objects.get(pk=target.pk).severity == "low"


def test_new_findings_are_born_scored_so_re_scoring_them_changes_nothing(team) -> None:
    team.sla_days = {"critical": 3, "high": 10, "medium": 40, "low": 100}
    team.save()
    image = ImageFactory(registry="registry.example.com", repository="payments/api", team=team)
    WorkloadSightingFactory(image=image, tag="1.4.1", digest="")  # the scanned version runs: its findings are born running
    KevEntryFactory(cve="CVE-2016-10001", due_date=timezone.localdate() + dt.timedelta(days=2))
    EpssScoreFactory(cve="CVE-2017-10002", epss=0.97, percentile=0.999)

    ingest(trivy_bytes(30, image=IMAGE, tag="1.4.1"), team="payments")

    scanned = Finding.objects.filter(source="trivy")
    kev, epss = scanned.get(rule_id="CVE-2016-10001"), scanned.get(rule_id="CVE-2017-10002")
    assert (kev.kev, kev.due_date, epss.epss, epss.epss_percentile) == (True, timezone.localdate() + dt.timedelta(days=2), 0.97, 0.999)
    assert set(scanned.values_list("exposed", flat=True)) == {True}
    assert intel.findings_rescore(ids=list(scanned.values_list("id", flat=True))) == 0


def test_images_and_their_tags_are_recorded_and_last_seen_moves_at_most_hourly() -> None:
    start = timezone.now() - dt.timedelta(hours=5)
    ingest(trivy_bytes(5, image=IMAGE, tag="1.4.1"), team="payments", observed_at=start)
    ingest(trivy_bytes(5, image=IMAGE, tag="1.4.1"), team="payments", observed_at=start + dt.timedelta(minutes=30))
    ingest(trivy_bytes(5, image=IMAGE, tag="1.4.2"), team="payments", observed_at=start + dt.timedelta(minutes=40))
    ingest(trivy_bytes(5, image=IMAGE, tag="1.4.1"), team="payments", observed_at=start + dt.timedelta(hours=2))

    image = Image.objects.get(repository="payments/api")
    versions = {v.tag: (v.first_seen, v.last_seen) for v in ImageVersion.objects.filter(image=image)}
    assert (image.team.slug, image.last_seen) == ("payments", start + dt.timedelta(hours=2))
    assert versions == {
        "1.4.1": (start, start + dt.timedelta(hours=2)),
        "1.4.2": (start + dt.timedelta(minutes=40), start + dt.timedelta(minutes=40)),
    }
