"""A re-scan's unchanged entries are recognised by their digest before they are normalised (dashboard/ingest/unchanged.py):
the end state is the one the full path gives, and the shortcut is really taken."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.ingest import unchanged, write
from dashboard.ingest.apply import close_findings
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import Finding, FindingEvent, FindingOccurrence, Report, Status
from scanners import entries, grype, trivy_vulnerabilities
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"
GRYPE = json.loads(fixture_bytes("grype/grype-golden_image.json"))


@pytest.fixture(autouse=True)
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def normalised(monkeypatch) -> list[str]:
    """The Trivy and Grype entries normalised (each its rule id)."""
    built: list[str] = []
    trivy_build, grype_build = trivy_vulnerabilities._build, grype.GrypeParser._build

    def trivy_spy(fields: tuple[Any, ...], *args: Any) -> Any:
        built.append(fields[0])
        return trivy_build(fields, *args)

    def grype_spy(self: Any, fields: tuple[Any, ...], *args: Any) -> Any:
        built.append(fields[0])
        return grype_build(self, fields, *args)

    monkeypatch.setattr(trivy_vulnerabilities, "_build", trivy_spy)
    monkeypatch.setattr(grype.GrypeParser, "_build", grype_spy)
    return built


def trivy(moment: dt.datetime, *, tag: str, image: str = IMAGE, first: int = 0, last: int = 40, **changes: dict[str, Any]) -> bytes:
    """Vulnerabilities first..last-1 of one report (each with the same content in every window), the fields of some
    changed (by CVE number), and the first OS vulnerability listed again under a second target (one finding)."""
    report = trivy_report(last, image=image, tag=tag)
    report["CreatedAt"] = moment.isoformat().replace("+00:00", "Z")
    for result in report["Results"]:
        result["Vulnerabilities"] = [v for v in result["Vulnerabilities"] if int(v["VulnerabilityID"].rsplit("-", 1)[1]) - 10000 >= first]
        for vulnerability in result["Vulnerabilities"]:
            vulnerability.update(changes.get(vulnerability["VulnerabilityID"].rsplit("-", 1)[1], {}))
    again = copy.deepcopy(report["Results"][0])
    again.update(Target="usr/lib/apk/other", Vulnerabilities=again["Vulnerabilities"][:1])
    report["Results"].append(again)
    return json.dumps(report).encode()


def grype_scan(moment: dt.datetime, severity: str) -> bytes:
    report = copy.deepcopy(GRYPE)
    report["descriptor"]["timestamp"] = moment.isoformat()
    report["matches"][0]["vulnerability"]["severity"] = severity
    return json.dumps(report).encode()


def series(start: dt.datetime) -> None:
    """Re-scans of one image (new tags, churn, changed content, findings fixed by hand and seen again, an hour later),
    a Grype scan of another image twice, and a report under an ``image`` override twice."""
    at = [start + dt.timedelta(minutes=minutes) for minutes in (0, 10, 20, 30, 40, 200, 210, 220, 230, 240)]
    ingest(trivy(at[0], tag="1.0"), team="payments", observed_at=at[0])
    ingest(trivy(at[1], tag="1.1"), team="payments", observed_at=at[1])
    changed = {
        "10005": {"Severity": "LOW"},
        "10006": {"Description": "rewritten"},
        "10007": {"LastModifiedDate": "2026-01-01T00:00:00Z"},
    }
    ingest(trivy(at[2], tag="1.1", first=4, last=44, **changed), team="payments", observed_at=at[2])
    fixed = Finding.objects.filter(rule_id__in=["CVE-2023-10008", "CVE-2024-10009", "CVE-2020-10015"]).values_list("pk", flat=True)
    close_findings(ids=list(fixed), report=None, now=at[3], reason="fixed by hand")
    ingest(trivy(at[4], tag="1.2", first=4, last=44, **changed), team="payments", observed_at=at[4])
    ingest(trivy(at[5], tag="1.2", first=4, last=44, **changed), team="payments", observed_at=at[5])
    ingest(grype_scan(at[6], "High"), team="payments", observed_at=at[6])
    ingest(grype_scan(at[7], "Critical"), team="payments", observed_at=at[7])
    override = "registry.example.com/payments/worker:3.0"
    ingest(trivy(at[8], tag="9.9", image="localhost/build"), team="payments", image=override, observed_at=at[8])
    ingest(trivy(at[9], tag="9.9", image="localhost/build", first=1), team="payments", image=override, observed_at=at[9])


def state() -> tuple[list[Any], ...]:
    """Every stored fact of the findings, their occurrences and events and the reports, without database ids."""
    skipped = {"id", "entry_hash", "first_report", "last_report", "image", "owner_rule", "assignee", "team"}
    columns = [field.attname for field in Finding._meta.concrete_fields if field.name not in skipped]
    findings = Finding.objects.order_by("fingerprint").values_list(
        *columns, "first_report__observed_at", "last_report__observed_at", "image__repository", "team__slug"
    )
    occurrences = FindingOccurrence.objects.order_by("finding__fingerprint", "tag", "digest").values_list(
        "finding__fingerprint", "tag", "digest", "workload", "first_seen", "last_seen"
    )
    events = FindingEvent.objects.order_by("finding__fingerprint", "created_at", "type").values_list(
        "finding__fingerprint", "type", "from_status", "to_status", "reason", "report__observed_at", "created_at"
    )
    by_id = dict(Finding.objects.values_list("pk", "fingerprint"))
    reports = [
        (observed, status, counts, total, scopes, sorted(by_id[pk] for pk in named), sorted(by_id[pk] for pk in held), image, tag)
        for observed, status, counts, total, scopes, named, held, image, tag in Report.objects.order_by("observed_at").values_list(
            "observed_at",
            "status",
            "counts",
            "findings_total",
            "scopes",
            "unchanged_ids",
            "held_closures",
            "image__repository",
            "image_tag",
        )
    ]
    return list(findings), list(occurrences), list(events), reports


def test_a_series_of_rescans_ends_where_the_full_path_ends(normalised, monkeypatch) -> None:
    start = timezone.now() - dt.timedelta(hours=6)
    series(start)
    shortcut, taken = state(), len(normalised)
    Report.objects.all().delete()
    Finding.objects.all().delete()
    normalised.clear()
    monkeypatch.setattr(unchanged, "ENABLED", False)

    series(start)

    assert shortcut == state()
    assert taken * 2 < len(normalised)  # the full path normalised every entry of every report
    reports = shortcut[3]
    assert [report[2] for report in reports][:3] == [
        {"new": 40, "reopened": 0, "unchanged": 0, "fixed": 0},
        {"new": 0, "reopened": 0, "unchanged": 40, "fixed": 0},
        {"new": 4, "reopened": 0, "unchanged": 36, "fixed": 4},
    ]
    assert reports[3][2] == {"new": 0, "reopened": 3, "unchanged": 37, "fixed": 0}


def test_only_the_entries_that_changed_are_normalised(normalised) -> None:
    start = timezone.now() - dt.timedelta(hours=1)
    ingest(trivy(start, tag="1.0"), team="payments", observed_at=start)
    normalised.clear()

    later = start + dt.timedelta(minutes=5)
    report = ingest(trivy(later, tag="1.1", first=4, last=44, **{"10005": {"Severity": "LOW"}}), team="payments", observed_at=later)

    assert report.counts == {"new": 4, "reopened": 0, "unchanged": 36, "fixed": 4}
    # the four new ones, the changed one, and the one now listed twice (its finding is two entries' content)
    new = ["CVE-2015-10040", "CVE-2016-10041", "CVE-2017-10042", "CVE-2018-10043"]
    assert sorted(normalised) == sorted([*new, "CVE-2020-10005", "CVE-2019-10004", "CVE-2019-10004"])
    assert Finding.objects.get(rule_id="CVE-2020-10005").severity == "low"
    assert set(FindingOccurrence.objects.filter(finding__status=Status.OPEN).values_list("tag", flat=True)) == {"1.0", "1.1"}


def test_a_digest_stored_by_other_code_is_never_recognised(normalised, monkeypatch) -> None:
    start = timezone.now() - dt.timedelta(hours=1)
    ingest(trivy(start, tag="1.0"), team="payments", observed_at=start)
    normalised.clear()
    monkeypatch.setattr(entries, "CODE_VERSION", b"a parser or normaliser changed")

    later = start + dt.timedelta(minutes=5)
    report = ingest(trivy(later, tag="1.1"), team="payments", observed_at=later)

    assert report.counts == {"new": 0, "reopened": 0, "unchanged": 40, "fixed": 0}
    assert len(normalised) == 41  # every entry normalised again (the first OS one is listed twice)


def test_a_new_digest_is_stored_only_with_a_write_the_finding_needs_anyway(normalised, monkeypatch) -> None:
    start = timezone.now() - dt.timedelta(hours=3)
    ingest(trivy(start, tag="1.0"), team="payments", observed_at=start)
    old = dict(Finding.objects.values_list("pk", "entry_hash"))
    monkeypatch.setattr(entries, "CODE_VERSION", b"a parser or normaliser changed")

    soon = start + dt.timedelta(minutes=5)
    ingest(trivy(soon, tag="1.0", first=1), team="payments", observed_at=soon)
    kept = dict(Finding.objects.values_list("pk", "entry_hash"))
    later = start + dt.timedelta(hours=2)
    ingest(trivy(later, tag="1.0", first=1), team="payments", observed_at=later)
    renewed = dict(Finding.objects.filter(status=Status.OPEN).values_list("pk", "entry_hash"))

    assert kept == old  # "last seen" did not move: nothing was written
    # every open finding but the one two entries make (it has no digest) got its new digest with "last seen"
    assert sorted(pk for pk in renewed if renewed[pk] != old[pk]) == sorted(pk for pk in renewed if renewed[pk])
    assert len([pk for pk in renewed if renewed[pk]]) == 38
    assert set(Finding.objects.filter(status=Status.OPEN).values_list("last_seen", flat=True)) == {later}


def test_what_a_digest_leaves_out_is_never_a_reason_to_rewrite_a_finding() -> None:
    assert set(trivy_vulnerabilities.UNDIGESTED) <= write.VOLATILE_DETAILS


def queries_to_apply(body: bytes, image: str, moment: dt.datetime) -> int:
    report, _ = report_submit(data=body, team_slug="payments", image=image, observed_at=moment, enqueue_now=False, deduplicate=False)
    with CaptureQueriesContext(connection) as applied:
        report_process(report.pk)
    return len(applied.captured_queries)


def test_a_rescan_with_unchanged_entries_costs_the_same_queries_for_20_and_200(require_postgres) -> None:
    start = timezone.now() - dt.timedelta(hours=1)
    later = start + dt.timedelta(minutes=5)
    queries_to_apply(trivy(start, tag="1.0", last=20), "registry.example.com/payments/small:1.0", start)
    queries_to_apply(trivy(start, tag="1.0", last=200), "registry.example.com/payments/large:1.0", start)

    small = queries_to_apply(trivy(later, tag="1.1", first=2, last=22), "registry.example.com/payments/small:1.1", later)
    large = queries_to_apply(trivy(later, tag="1.1", first=20, last=220), "registry.example.com/payments/large:1.1", later)

    assert small == large
    assert Finding.objects.filter(status=Status.FIXED).count() == 22
