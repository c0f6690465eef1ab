"""Detection: what needs a person now becomes one grouped, deduplicated outbox row per team channel, and only the team's own."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import (
    FindingEvent,
    GateDecision,
    GateOutcome,
    Notification,
    NotificationEvent,
    PolicyMode,
    ReportStatus,
    Severity,
    Status,
)
from dashboard.services.notifications import notifications_scan
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import (
    EnforcementPolicyFactory,
    FindingEventFactory,
    FindingFactory,
    GateDecisionFactory,
    NotificationChannelFactory,
    ReportFactory,
    RiskAcceptanceFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _base_url(settings) -> None:
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    settings.VIGIL_PRODUCTION_NAMESPACES = ["*-prod"]


def _finished_report(team, **fields):
    return ReportFactory(team=team, **{"finished_at": timezone.now(), **fields})


def test_fifty_new_criticals_of_one_report_make_one_message_per_channel_naming_ten_and_linking_the_rest() -> None:
    team = TeamFactory(slug="payments", name="Payments")
    chat, _mail = NotificationChannelFactory(team=team), NotificationChannelFactory(team=team, kind="email", url="")
    report = _finished_report(team, format="trivy", image_ref="registry.example.com/payments/api:1.4.2")
    for _ in range(50):
        FindingFactory(team=team, severity=Severity.CRITICAL, first_report=report)

    created = notifications_scan()

    row = Notification.objects.get(channel=chat)
    assert created == 2
    assert row.event == NotificationEvent.NEW_CRITICAL
    assert row.count == 50
    assert row.subject == "Vigil: 50 new critical or KEV findings for Payments"
    assert row.text.startswith("Why: the trivy report of registry.example.com/payments/api:1.4.2 brought 50 critical or KEV findings")
    assert row.text.count("https://vigil.example.com/findings/") == 11
    assert "… and 40 more." in row.text
    assert row.link == f"https://vigil.example.com/findings/?team=payments&report={report.pk}&status=active"


def test_scanning_again_writes_nothing_new() -> None:
    team = TeamFactory()
    NotificationChannelFactory(team=team)
    report = _finished_report(team)
    FindingFactory(team=team, kev=True, severity=Severity.HIGH, first_report=report)

    first, second = notifications_scan(), notifications_scan(now=timezone.now() + dt.timedelta(minutes=1))

    assert (first, second) == (1, 0)
    assert Notification.objects.count() == 1


def test_a_report_naming_two_teams_tells_each_team_only_of_its_own_findings() -> None:
    alpha, bravo = TeamFactory(slug="alpha"), TeamFactory(slug="bravo")
    alpha_chat, bravo_chat = NotificationChannelFactory(team=alpha), NotificationChannelFactory(team=bravo)
    report = _finished_report(None)
    FindingFactory(team=alpha, severity=Severity.CRITICAL, rule_id="CVE-ALPHA", first_report=report)
    FindingFactory(team=bravo, severity=Severity.CRITICAL, rule_id="CVE-BRAVO", first_report=report)

    notifications_scan()

    alpha_text, bravo_text = Notification.objects.get(channel=alpha_chat).text, Notification.objects.get(channel=bravo_chat).text
    assert ("CVE-ALPHA" in alpha_text, "CVE-BRAVO" in alpha_text) == (True, False)
    assert ("CVE-BRAVO" in bravo_text, "CVE-ALPHA" in bravo_text) == (True, False)


def test_a_channel_gets_only_the_events_it_subscribed_to_and_an_inactive_one_nothing() -> None:
    team = TeamFactory()
    reports_only = NotificationChannelFactory(team=team, events=[NotificationEvent.REPORT_PROBLEM])
    NotificationChannelFactory(team=team, active=False)
    report = _finished_report(team)
    FindingFactory(team=team, severity=Severity.CRITICAL, first_report=report)
    _finished_report(team, status=ReportStatus.FAILED, error="not a Trivy report")

    notifications_scan()

    assert list(Notification.objects.values_list("channel", "event")) == [(reports_only.pk, NotificationEvent.REPORT_PROBLEM)]


def test_medium_findings_fixed_events_and_findings_already_false_positive_are_not_urgent() -> None:
    team = TeamFactory()
    NotificationChannelFactory(team=team)
    report = _finished_report(team)
    FindingFactory(team=team, severity=Severity.MEDIUM, first_report=report)
    FindingEventFactory(finding=FindingFactory(team=team, severity=Severity.CRITICAL), report=report, type=FindingEvent.Type.FIXED)
    FindingFactory(team=team, severity=Severity.CRITICAL, status=Status.FALSE_POSITIVE, first_report=report)

    assert notifications_scan() == 0


def test_a_real_trivy_report_with_criticals_notifies_once() -> None:
    team = TeamFactory(slug="payments")
    NotificationChannelFactory(team=team)
    ingest(fixture_bytes("trivy/misconfigurations_and_secrets.json"), team="payments")

    notifications_scan()

    row = Notification.objects.get()
    assert (row.event, row.count) == (NotificationEvent.NEW_CRITICAL, 2)


def test_real_falco_alerts_notify_the_high_and_critical_ones_in_one_message() -> None:
    team = TeamFactory(slug="payments")
    NotificationChannelFactory(team=team, events=[NotificationEvent.RUNTIME_ALERT])
    ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="payments", format_name="falco")

    notifications_scan()

    row = Notification.objects.get()
    assert (row.event, row.count) == (NotificationEvent.RUNTIME_ALERT, 2)
    assert "stream=runtime" in row.link


def test_a_real_admission_denial_notifies_when_the_team_policy_enforces_its_namespace() -> None:
    team = TeamFactory(slug="payments")
    EnforcementPolicyFactory(team=team, namespace_modes={"payments": PolicyMode.ENFORCE})
    NotificationChannelFactory(team=team, events=[NotificationEvent.ADMISSION_DENIAL])
    ingest(fixture_bytes("admission-review/denied_pod_kyverno.json"), team="payments")

    notifications_scan()

    row = Notification.objects.get()
    assert row.event == NotificationEvent.ADMISSION_DENIAL
    assert "denied in a production namespace of" in row.text


def test_the_same_denial_outside_production_is_not_urgent() -> None:
    team = TeamFactory(slug="payments")
    NotificationChannelFactory(team=team, events=[NotificationEvent.ADMISSION_DENIAL])
    ingest(fixture_bytes("admission-review/denied_pod_kyverno.json"), team="payments")

    assert notifications_scan() == 0


def test_vigils_own_admission_refusals_are_grouped_per_image_and_hour() -> None:
    team = TeamFactory(name="Payments")
    NotificationChannelFactory(team=team)
    for _ in range(3):
        GateDecisionFactory(
            team=team, point=GateDecision.Point.ADMISSION, decision=GateOutcome.FAIL, mode=PolicyMode.ENFORCE,
            image_ref="registry.example.com/payments/api:1.4.2", namespace="payments-prod",
            reasons=[{"finding": 1, "rule_id": "CVE-2023-0286", "severity": "critical"}],
        )  # fmt: skip
    GateDecisionFactory(team=team, point=GateDecision.Point.ADMISSION, decision=GateOutcome.WARN)

    notifications_scan()

    row = Notification.objects.get()
    assert row.count == 3
    assert row.subject == "Vigil: admission denied registry.example.com/payments/api:1.4.2 in namespace payments-prod (Payments)"
    assert "Findings that blocked it: CVE-2023-0286" in row.text


def test_a_report_holding_closures_asks_for_confirmation_with_a_link_to_it() -> None:
    team = TeamFactory(name="Payments")
    NotificationChannelFactory(team=team)
    report = _finished_report(team, held_closures=[1, 2, 3])

    notifications_scan()

    row = Notification.objects.get()
    assert row.subject == "Vigil: a report for Payments holds 3 closures for you to confirm"
    assert row.link == f"https://vigil.example.com/reports/{report.pk}/"


def test_sla_breaching_tomorrow_and_acceptances_expiring_within_a_week_are_told_once_a_day() -> None:
    team = TeamFactory(slug="payments", name="Payments")
    NotificationChannelFactory(team=team)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    FindingFactory.create_batch(2, team=team, due_date=tomorrow)
    FindingFactory(team=team, due_date=tomorrow + dt.timedelta(days=1))
    acceptance = RiskAcceptanceFactory(team=team, expires=timezone.localdate() + dt.timedelta(days=7))
    RiskAcceptanceFactory(team=team, expires=timezone.localdate() + dt.timedelta(days=8))

    first, later = notifications_scan(), notifications_scan(now=timezone.now() + dt.timedelta(minutes=5))

    assert (first, later) == (2, 0)
    sla = Notification.objects.get(event=NotificationEvent.SLA_TOMORROW)
    assert sla.subject == "Vigil: 2 findings of Payments breach the SLA tomorrow"
    expiring = Notification.objects.get(event=NotificationEvent.ACCEPTANCE_EXPIRING)
    assert f"risk acceptance #{acceptance.pk} of Payments expires on" in expiring.text
    assert expiring.link == f"https://vigil.example.com/findings/?team=payments&acceptance={acceptance.pk}&status=risk_accepted"


def test_a_report_committed_after_the_last_scan_but_finished_before_it_is_still_read() -> None:
    team = TeamFactory()
    NotificationChannelFactory(team=team)
    notifications_scan()
    late = ReportFactory(team=team, finished_at=timezone.now() - dt.timedelta(minutes=3))
    FindingFactory(team=team, severity=Severity.CRITICAL, first_report=late)

    assert notifications_scan() == 1


def test_a_scan_costs_the_same_queries_for_one_report_as_for_twenty(django_assert_max_num_queries) -> None:
    team = TeamFactory()
    NotificationChannelFactory(team=team)
    one = _finished_report(team)
    FindingFactory(team=team, severity=Severity.CRITICAL, first_report=one)
    notifications_scan()
    later = timezone.now() + dt.timedelta(minutes=1)
    for report in [_finished_report(team, finished_at=later) for _ in range(20)]:
        brought = FindingFactory(team=team, severity=Severity.CRITICAL, first_report=report)
        FindingEventFactory.create_batch(2, finding=brought, report=report, type=FindingEvent.Type.REOPENED)

    with django_assert_max_num_queries(15):
        created = notifications_scan(now=later + dt.timedelta(seconds=1))

    assert created == 20


def test_the_same_falco_alert_again_within_the_hour_is_not_a_new_message() -> None:
    team = TeamFactory(slug="payments")
    NotificationChannelFactory(team=team, events=[NotificationEvent.RUNTIME_ALERT])
    alerts = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl")
    observed = timezone.now().replace(minute=10)
    ingest(alerts, team="payments", format_name="falco", observed_at=observed)
    first = notifications_scan()
    ingest(alerts, team="payments", format_name="falco", observed_at=observed + dt.timedelta(minutes=20))

    again = notifications_scan(now=timezone.now() + dt.timedelta(seconds=1))

    assert (first, again) == (1, 0)
