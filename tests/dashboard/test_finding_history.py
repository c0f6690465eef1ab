"""A finding's creation is recorded on the finding (the report that first saw it, when), not as an event; its
history still starts with it, and the report's "new" outcome, the repeat check and reopening read it there."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.models import Finding, FindingEvent, Role, Status
from dashboard.selectors.finding_detail import finding_detail
from dashboard.selectors.report_outcomes import outcome_filter
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"


def without(report: dict, count: int) -> bytes:
    report = json.loads(json.dumps(report))
    report["Results"][0]["Vulnerabilities"] = report["Results"][0]["Vulnerabilities"][count:]
    return json.dumps(report).encode()


@pytest.fixture
def champion(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = UserFactory(username="chris")
    MembershipFactory(user=user, team=TeamFactory(slug="payments"), role=Role.CHAMPION)
    return user


def test_a_new_finding_records_the_report_that_first_saw_it_and_no_event(champion) -> None:
    first = ingest(json.dumps(trivy_report(5, image=IMAGE)).encode(), team="payments", observed_at=timezone.now() - dt.timedelta(hours=1))

    findings = Finding.objects.all()

    assert {(f.first_report_id, f.first_seen) for f in findings} == {(first.pk, first.observed_at)}
    assert FindingEvent.objects.count() == 0
    assert set(findings.filter(outcome_filter(report=str(first.pk), outcome="new")).values_list("id", flat=True)) == set(
        findings.values_list("id", flat=True)
    )


def test_the_history_ends_with_the_creation_by_the_first_report(champion) -> None:
    report = trivy_report(5, image=IMAGE)
    first = ingest(json.dumps(report).encode(), team="payments")
    second = ingest(without(report, 1), team="payments")
    back = ingest(json.dumps(report).encode(), team="payments")
    finding = Finding.objects.get(status=Status.OPEN, events__type=FindingEvent.Type.REOPENED)

    history = finding_detail(user=champion, pk=finding.pk).events
    client = Client()
    client.force_login(champion)
    page = client.get(f"/findings/{finding.pk}/").content.decode()

    assert [(event.type, event.report.pk) for event in history] == [("reopened", back.pk), ("fixed", second.pk), ("created", first.pk)]
    entries = re.findall(r'<li class="ev-(\w+)[^"]*">', page)
    assert entries == ["reopened", "fixed", "created"]
    assert f'href="/reports/{first.pk}/"' in page.split('class="ev-created')[1]
