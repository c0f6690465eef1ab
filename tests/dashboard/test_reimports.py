"""A repeated scan (timestamps aside) is recorded without parsing, only when that cannot change anything."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.ingest import claim, receive
from dashboard.models import Finding, LifecycleScope, Report, Status
from tests.dashboard.ingest_helpers import ingest
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"


@pytest.fixture(autouse=True)
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The reports the worker loaded to parse (a repeat is recorded without)."""
    loaded: list[str] = []
    original = claim._load_payload

    def spy(report_id):
        loaded.append(str(report_id))
        return original(report_id)

    monkeypatch.setattr(claim, "_load_payload", spy)
    return loaded


def scan(created_at: str, *, drop: int = 0) -> bytes:
    report = trivy_report(40, image=IMAGE, tag="2.0.0")
    report["CreatedAt"] = created_at
    report["ReportID"] = f"run-{created_at}"
    report["Results"][0]["Vulnerabilities"] = report["Results"][0]["Vulnerabilities"][drop:]
    return json.dumps(report).encode()


def test_the_same_scan_run_again_is_recorded_as_unchanged_without_parsing(parses) -> None:
    first = ingest(scan("2026-11-27T08:00:00Z"), team="payments")

    second = ingest(scan("2026-11-27T08:20:00Z"), team="payments")
    third = ingest(scan("2026-11-27T08:40:00Z"), team="payments")

    assert len(parses) == 1
    assert (second.status, second.counts, second.findings_total) == ("done", {"new": 0, "reopened": 0, "unchanged": 40, "fixed": 0}, 40)
    assert (third.format, third.stream, third.image_id, third.scopes) == ("trivy", "scan", first.image_id, first.scopes)
    assert set(LifecycleScope.objects.filter(key__in=first.scopes).values_list("last_report_id", flat=True)) == {third.pk}
    assert set(Finding.objects.values_list("last_report_id", flat=True)) == {first.pk}


def test_after_another_report_of_the_image_the_repeat_is_applied_in_full(parses) -> None:
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")
    ingest(scan("2026-11-27T08:10:00Z", drop=5), team="payments")

    again = ingest(scan("2026-11-27T08:20:00Z"), team="payments")

    assert len(parses) == 3
    assert again.counts == {"new": 0, "reopened": 5, "unchanged": 35, "fixed": 0}


def test_a_status_changed_by_a_person_since_sends_the_repeat_through_the_full_path(parses) -> None:
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")
    changed = Finding.objects.order_by("id").first()
    Finding.objects.filter(pk=changed.pk).update(status=Status.FIXED, status_changed_at=timezone.now())

    again = ingest(scan("2026-11-27T08:20:00Z"), team="payments")

    assert len(parses) == 2
    assert again.counts == {"new": 0, "reopened": 1, "unchanged": 39, "fixed": 0}
    assert Finding.objects.get(pk=changed.pk).status == Status.OPEN


def test_findings_not_seen_for_over_an_hour_send_the_repeat_through_the_full_path(parses) -> None:
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")
    Finding.objects.update(last_seen=timezone.now() - dt.timedelta(hours=2))

    again = ingest(scan("2026-11-27T08:20:00Z"), team="payments")

    assert len(parses) == 2
    assert again.counts["unchanged"] == 40
    assert Finding.objects.filter(last_seen__lt=timezone.now() - dt.timedelta(hours=1)).count() == 0
    assert set(Finding.objects.values_list("last_report_id", flat=True)) == {again.pk}


def test_a_report_with_held_closures_is_never_repeated_without_parsing(parses) -> None:
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")
    held = ingest(scan("2026-11-27T08:10:00Z", drop=30), team="payments")

    again = ingest(scan("2026-11-27T08:20:00Z", drop=30), team="payments")

    assert len(parses) == 3
    assert again.held_closures == held.held_closures != []


def test_a_different_team_never_repeats_another_teams_report(parses) -> None:
    TeamFactory(slug="shop")
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")

    other = ingest(scan("2026-11-27T08:20:00Z"), team="shop")

    assert len(parses) == 2
    assert Report.objects.get(pk=other.pk).counts["unchanged"] == 40


def test_a_large_repeat_of_a_report_that_parsed_is_not_validated_again(monkeypatch) -> None:
    ingest(scan("2026-11-27T08:00:00Z"), team="payments")
    validated: list[int] = []
    monkeypatch.setattr(receive, "_validation", lambda data, format_name: (validated.append(len(data)) or "", "", None))
    padded = json.loads(scan("2026-11-27T08:20:00Z"))
    padded["Metadata"]["padding"] = "x" * receive.KNOWN_GOOD_BYTES

    ingest(scan("2026-11-27T08:40:00Z"), team="payments")
    ingest(json.dumps(padded).encode(), team="payments")
    ingest(json.dumps(padded).replace('"2026-11-27T08:20:00Z"', '"2026-11-27T09:00:00Z"').encode(), team="payments")

    assert len(validated) == 2  # the small repeat (always validated) and the first padded one (new content)
