"""Risk acceptance: justification, expiry, four-eyes, expiry reopening and telling the champion."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Finding, FindingEvent, RiskAcceptance, Role, Status
from dashboard.services import risk_acceptance
from dashboard.services.risk_acceptance import Scope
from tests.dashboard.ingest_helpers import ingest
from tests.factories import FindingFactory, MembershipFactory, RiskAcceptanceFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 27)
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris", email="chris@example.com")).user


@pytest.fixture
def second(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="sam", email="sam@example.com")).user


def test_accepting_risk_without_four_eyes_is_immediate_with_the_default_expiry(team, champion, settings) -> None:
    settings.VIGIL_RISK_ACCEPTANCE_DAYS = 90
    findings = FindingFactory.create_batch(2, team=team)

    result = risk_acceptance.acceptance_request(ids=[f.pk for f in findings], by=champion, reason="WAF blocks the vector", now=NOW)

    acceptance = RiskAcceptance.objects.get()
    assert sorted(result.changed) == sorted(f.pk for f in findings)
    assert (acceptance.state, acceptance.expires, acceptance.requested_by, acceptance.approved_by) == (
        "approved",
        dt.date(2027, 2, 25),
        champion,
        champion,
    )
    assert set(Finding.objects.values_list("status", flat=True)) == {Status.RISK_ACCEPTED}
    event = FindingEvent.objects.filter(to_status=Status.RISK_ACCEPTED).first()
    assert (event.reason, event.data["acceptance"], event.data["expires"]) == ("WAF blocks the vector", acceptance.pk, "2027-02-25")


def test_an_acceptance_needs_a_justification(team, champion) -> None:
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        risk_acceptance.acceptance_request(ids=[finding.pk], by=champion, reason="", now=NOW)

    assert error.value.code == "reason_required"


def test_an_expiry_beyond_the_configured_maximum_is_refused(team, champion, settings) -> None:
    settings.VIGIL_RISK_ACCEPTANCE_MAX_DAYS = 180
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        risk_acceptance.acceptance_request(ids=[finding.pk], by=champion, reason="later", expires=dt.date(2027, 6, 1), now=NOW)

    assert error.value.message == "a risk acceptance may last at most 180 days (until 2027-05-26)"


def test_an_expiry_in_the_past_is_refused(team, champion) -> None:
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        risk_acceptance.acceptance_request(ids=[finding.pk], by=champion, reason="later", expires=TODAY, now=NOW)

    assert error.value.message == "a risk acceptance must expire after today"


def test_a_member_may_not_accept_risk(team) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user
    finding = FindingFactory(team=team)

    result = risk_acceptance.acceptance_request(ids=[finding.pk], by=member, reason="fine", now=NOW)

    assert result.skipped == {"you may not accept risk for this team": 1}
    assert RiskAcceptance.objects.count() == 0


def test_with_four_eyes_the_acceptance_waits_and_the_findings_keep_their_status(team, champion) -> None:
    team.four_eyes = True
    team.save()
    finding = FindingFactory(team=team)

    result = risk_acceptance.acceptance_request(ids=[finding.pk], by=champion, reason="batch job only", now=NOW)

    acceptance = RiskAcceptance.objects.get()
    assert result.pending_acceptances == [acceptance.pk]
    assert (acceptance.state, acceptance.approved_by) == ("pending", None)
    assert Finding.objects.get().status == Status.OPEN
    assert FindingEvent.objects.get().type == FindingEvent.Type.ACCEPTANCE


def test_four_eyes_the_requester_cannot_approve_their_own_request(team, champion) -> None:
    acceptance = RiskAcceptanceFactory(
        team=team, requested_by=champion, approved_by=None, state="pending", findings=[FindingFactory(team=team)]
    )

    with pytest.raises(ApplicationError) as error:
        risk_acceptance.acceptance_approve(acceptance=acceptance, by=champion)

    assert (error.value.code, error.value.status) == ("four_eyes", 403)


def test_four_eyes_a_second_champion_approves_and_the_findings_are_accepted(team, champion, second) -> None:
    finding = FindingFactory(team=team)
    acceptance = RiskAcceptanceFactory(team=team, requested_by=champion, approved_by=None, state="pending", findings=[finding])

    result = risk_acceptance.acceptance_approve(acceptance=acceptance, by=second, reason="agreed", ip="10.1.2.3")

    acceptance.refresh_from_db()
    event = FindingEvent.objects.get(finding=finding)
    assert result.changed == [finding.pk]
    assert (acceptance.state, acceptance.approved_by, acceptance.decision_reason) == ("approved", second, "agreed")
    assert (event.actor, event.to_status, event.data["requested_by"], event.data["approved_by"]) == (
        second,
        "risk_accepted",
        "chris",
        "sam",
    )
    assert (
        AuditEvent.objects.get(action=AuditEvent.Action.RISK_ACCEPTED).summary
        == f"risk acceptance #{acceptance.pk} approved: 1 finding until {acceptance.expires.isoformat()}"
    )


def test_a_member_cannot_approve(team, champion) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user
    acceptance = RiskAcceptanceFactory(team=team, requested_by=champion, approved_by=None, state="pending")

    with pytest.raises(ApplicationError) as error:
        risk_acceptance.acceptance_approve(acceptance=acceptance, by=member)

    assert error.value.status == 403


def test_a_rejected_request_leaves_the_findings_as_they_were(team, champion, second) -> None:
    finding = FindingFactory(team=team, status=Status.TRIAGED)
    acceptance = RiskAcceptanceFactory(team=team, requested_by=champion, approved_by=None, state="pending", findings=[finding])

    risk_acceptance.acceptance_reject(acceptance=acceptance, by=second, reason="fix is one line")

    acceptance.refresh_from_db()
    assert (acceptance.state, acceptance.decision_reason) == ("rejected", "fix is one line")
    assert Finding.objects.get().status == Status.TRIAGED
    assert FindingEvent.objects.get().reason == f"risk acceptance #{acceptance.pk} rejected: fix is one line"


def test_at_expiry_findings_reopen_the_champion_is_emailed_and_a_second_run_does_nothing(team, champion, settings) -> None:
    settings.VIGIL_SLA_RESTART_ON_REOPEN = True
    finding = FindingFactory(team=team, status=Status.RISK_ACCEPTED, severity="high")
    acceptance = RiskAcceptanceFactory(team=team, requested_by=champion, expires=dt.date(2026, 11, 26), findings=[finding])

    first = risk_acceptance.acceptances_expire(now=NOW)
    second = risk_acceptance.acceptances_expire(now=NOW)

    finding.refresh_from_db()
    acceptance.refresh_from_db()
    event = FindingEvent.objects.get(finding=finding)
    assert (first.expired, first.reopened) == ([acceptance.pk], [finding.pk])
    assert (second.expired, second.reopened) == ([], [])
    assert acceptance.state == "expired"
    assert (finding.status, finding.sla_started_on, finding.due_date) == ("open", TODAY, dt.date(2026, 12, 27))
    assert (event.type, event.from_status, event.to_status, event.reason) == (
        "reopened",
        "risk_accepted",
        "open",
        f"risk acceptance #{acceptance.pk} expired on 2026-11-26",
    )
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["chris@example.com"]
    assert mail.outbox[0].subject == f"[Vigil] Risk acceptance #{acceptance.pk} for Payments expired: 1 finding reopened"


def test_an_acceptance_lasts_through_its_expiry_day(team, champion) -> None:
    finding = FindingFactory(team=team, status=Status.RISK_ACCEPTED)
    RiskAcceptanceFactory(team=team, requested_by=champion, expires=TODAY, findings=[finding])

    result = risk_acceptance.acceptances_expire(now=NOW)

    assert result.expired == []
    assert Finding.objects.get().status == Status.RISK_ACCEPTED


def test_a_finding_still_covered_by_another_acceptance_stays_accepted(team, champion) -> None:
    finding = FindingFactory(team=team, status=Status.RISK_ACCEPTED)
    RiskAcceptanceFactory(team=team, expires=dt.date(2026, 11, 20), findings=[finding])
    RiskAcceptanceFactory(team=team, expires=dt.date(2027, 1, 31), findings=[finding])

    result = risk_acceptance.acceptances_expire(now=NOW)

    assert len(result.expired) == 1
    assert result.reopened == []
    assert Finding.objects.get().status == Status.RISK_ACCEPTED


def test_a_scoped_acceptance_covers_this_cve_in_every_matching_image_now_and_at_ingest(team, champion) -> None:
    report = trivy_report(4, image="registry.example.com/payments/api")
    cve = report["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"]
    ingest(json.dumps(report).encode(), team="payments")
    first = Finding.objects.get(rule_id=cve)
    today = timezone.localdate()

    risk_acceptance.acceptance_request(
        ids=[first.pk],
        by=champion,
        reason="not reachable in our images",
        expires=today + dt.timedelta(days=30),
        scope=Scope(rule_id=cve, image_pattern="registry.example.com/payments/*"),
        team=team,
    )
    ingest(json.dumps(trivy_report(4, image="registry.example.com/payments/worker")).encode(), team="payments")
    ingest(json.dumps(trivy_report(4, image="registry.example.com/other/thing")).encode(), team="payments")

    acceptance = RiskAcceptance.objects.get()
    assert sorted(Finding.objects.filter(rule_id=cve).values_list("image__repository", "status")) == [
        ("other/thing", "open"),
        ("payments/api", "risk_accepted"),
        ("payments/worker", "risk_accepted"),
    ]
    assert acceptance.findings.count() == 2
