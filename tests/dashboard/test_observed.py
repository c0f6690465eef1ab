"""A report is observed at the scanner's own time when its format carries one (dashboard/services/observed.py)."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.models import Role
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

TRIVY_CREATED_AT = dt.datetime(2021, 8, 25, 12, 20, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def payments():
    return TeamFactory(slug="payments")


def test_a_trivy_report_is_observed_at_its_created_at_and_received_now() -> None:
    report = ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments")

    assert report.observed_at == TRIVY_CREATED_AT
    assert report.received_at > TRIVY_CREATED_AT + dt.timedelta(days=365)


def test_the_lifecycle_keeps_vigils_clock_so_an_old_file_is_not_overdue_on_arrival() -> None:
    report = ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments")

    first_seen = set(report.team.findings.values_list("first_seen", flat=True))
    assert first_seen == {report.received_at}


def test_a_report_without_a_time_of_its_own_is_observed_when_received() -> None:
    report = ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments")

    assert report.observed_at == report.received_at


def test_a_backdated_report_keeps_the_moment_it_was_backdated_to() -> None:
    backdated = timezone.now() - dt.timedelta(days=3)

    report = ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments", observed_at=backdated)

    assert report.observed_at == backdated


def test_a_scanner_clock_ahead_of_vigils_is_not_believed() -> None:
    before_the_scan = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)  # the CycloneDX file says 2026-03-19
    with mock.patch("django.utils.timezone.now", return_value=before_the_scan):
        report = ingest(fixture_bytes("cyclonedx/grype-golden_image_with-vulnerabilities.json"), team="payments")

    assert report.observed_at == report.received_at == before_the_scan


def test_the_report_list_and_page_label_received_and_observed_in_one_format(payments) -> None:
    report = ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments")
    client = Client()
    client.force_login(MembershipFactory(team=payments, role=Role.CHAMPION).user)

    listed = client.get("/reports/").content.decode()
    page = client.get(f"/reports/{report.pk}/").content.decode()

    observed = '<time datetime="2021-08-25T12:20:30+00:00">2021-08-25 12:20 UTC</time>'
    assert ">Received</th>" in listed and ">Observed</th>" in listed and observed in listed
    assert ">Received</dt>" in page and ">Observed</dt>" in page and observed in page


def test_the_report_api_answers_received_and_observed(payments) -> None:
    report = ingest(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"), team="payments")
    client = APIClient()
    client.force_authenticate(MembershipFactory(team=payments, role=Role.CHAMPION).user)

    body = client.get(f"/api/v1/reports/{report.pk}/").json()

    assert body["observed_at"] == "2021-08-25T12:20:30+00:00"
    assert body["received_at"] == report.received_at.isoformat()
