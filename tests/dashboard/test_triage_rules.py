"""Decisions stick to a finding's identity, and auto-triage rules act at ingest, recorded as done by the rule."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from bench.reportgen import trivy_report
from dashboard.errors import ApplicationError
from dashboard.models import Finding, FindingEvent, RiskAcceptance, Role, Status, TriageRule
from dashboard.services import triage, triage_rules
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory, TriageRuleFactory, UserFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user


def scan(tag: str, n: int = 6) -> bytes:
    return json.dumps(trivy_report(n, image=IMAGE, tag=tag)).encode()


def test_a_false_positive_stays_false_after_a_rescan_of_a_new_tag(team, champion) -> None:
    ingest(scan("1.4.1"), team="payments", image=f"{IMAGE}:1.4.1")
    finding = Finding.objects.order_by("id").first()
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.FALSE_POSITIVE, reason="only in test fixtures")

    report = ingest(scan("1.4.2"), team="payments", image=f"{IMAGE}:1.4.2")

    finding.refresh_from_db()
    assert report.counts == {"new": 0, "reopened": 0, "unchanged": 6, "fixed": 0}
    assert finding.status == Status.FALSE_POSITIVE
    assert sorted(finding.occurrence_set.values_list("tag", flat=True)) == ["1.4.1", "1.4.2"]
    assert list(finding.events.values_list("type", flat=True)) == ["status"]


def test_a_false_positive_is_not_closed_by_absence_either(team, champion) -> None:
    ingest(scan("1.4.1", n=6), team="payments", image=f"{IMAGE}:1.4.1")
    finding = Finding.objects.order_by("id").first()
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.FALSE_POSITIVE, reason="vendored")

    ingest(json.dumps(trivy_report(5, start=1, image=IMAGE, tag="1.4.2")).encode(), team="payments", image=f"{IMAGE}:1.4.2")

    finding.refresh_from_db()
    assert finding.status == Status.FALSE_POSITIVE


def test_a_team_rule_marks_matching_new_findings_false_positive_as_the_rule(team) -> None:
    rule = TriageRuleFactory(team=team, name="node test data", match_path="app/node_modules/*", reason="test fixtures are not shipped")

    ingest(scan("1.0.0"), team="payments", image=f"{IMAGE}:1.0.0")

    marked = Finding.objects.filter(status=Status.FALSE_POSITIVE).order_by("package_path")
    events = FindingEvent.objects.filter(type="status", finding__in=marked)
    assert list(marked.values_list("package_path", flat=True)) == [
        "app/node_modules/lodash/package-0.json",
        "app/node_modules/log4j-core/package-3.json",
    ]
    assert set(events.values_list("triage_rule", "actor", "reason")) == {
        (rule.pk, None, f"rule #{rule.pk} node test data: test fixtures are not shipped")
    }
    assert events.count() == 2
    assert Finding.objects.filter(status=Status.OPEN).count() == 4


def test_a_rule_accepts_risk_until_its_date_under_one_standing_acceptance(team) -> None:
    until = timezone.localdate() + dt.timedelta(days=60)
    rule = TriageRuleFactory(
        team=team, action=TriageRule.Action.ACCEPT_RISK, accept_until=until, match_package="openssl", reason="patched by base image"
    )

    ingest(scan("1.0.0", n=12), team="payments", image=f"{IMAGE}:1.0.0")
    ingest(json.dumps(trivy_report(12, start=12, image=IMAGE, tag="1.1.0")).encode(), team="payments", image=f"{IMAGE}:1.1.0")

    acceptance = RiskAcceptance.objects.get()
    accepted = Finding.objects.filter(status=Status.RISK_ACCEPTED)
    assert set(accepted.values_list("package_name", flat=True)) == {"openssl"}
    assert accepted.count() == 2
    assert (acceptance.rule, acceptance.state, acceptance.expires, acceptance.findings.count()) == (rule, "approved", until, 2)


def test_a_severity_rule_lowers_severity_once_and_keeps_it_when_the_report_repeats(team) -> None:
    rule = TriageRuleFactory(team=team, action=TriageRule.Action.SET_SEVERITY, severity="low", match_package="zlib", reason="not reachable")
    data = scan("1.0.0")
    ingest(data, team="payments", image=f"{IMAGE}:1.0.0")

    ingest(scan("1.0.1"), team="payments", image=f"{IMAGE}:1.0.1")

    finding = Finding.objects.get(package_name="zlib")
    events = FindingEvent.objects.filter(finding=finding, type="severity")
    assert finding.severity == "low"
    assert finding.risk_parts["severity"] == round(finding.cvss * 5.5, 1)
    assert list(events.values_list("data", "triage_rule")) == [({"from": "medium", "to": "low"}, rule.pk)]


def test_global_rules_apply_to_every_team(team) -> None:
    TriageRuleFactory(team=None, match_rule_id="CVE-2016-*", reason="too old to matter here")

    ingest(scan("1.0.0"), team="payments", image=f"{IMAGE}:1.0.0")

    assert list(Finding.objects.filter(status=Status.FALSE_POSITIVE).values_list("rule_id", flat=True)) == ["CVE-2016-10001"]


def test_disabled_rules_do_nothing(team) -> None:
    TriageRuleFactory(team=team, match_package="*", enabled=False)

    ingest(scan("1.0.0"), team="payments", image=f"{IMAGE}:1.0.0")

    assert Finding.objects.filter(status=Status.OPEN).count() == 6


def test_only_a_champion_creates_team_rules_and_only_staff_global_ones(team, champion) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    with pytest.raises(ApplicationError) as by_member:
        triage_rules.rule_create(by=member, team=team, name="x", action="false_positive", reason="r", match_package="a")
    with pytest.raises(ApplicationError) as global_by_champion:
        triage_rules.rule_create(by=champion, team=None, name="x", action="false_positive", reason="r", match_package="a")
    rule = triage_rules.rule_create(by=champion, team=team, name="tests", action="false_positive", reason="r", match_path="*/test/*")

    assert (by_member.value.status, global_by_champion.value.status) == (403, 403)
    assert (rule.team, rule.match_path, rule.created_by) == (team, "*/test/*", champion)


def test_a_rule_needs_a_condition(team, champion) -> None:
    with pytest.raises(ApplicationError) as error:
        triage_rules.rule_create(by=champion, team=team, name="everything", action="false_positive", reason="r")

    assert error.value.code == "no_condition"


def test_applying_a_rule_to_existing_findings_records_it_as_done_by_the_rule(team, champion) -> None:
    ingest(scan("1.0.0"), team="payments", image=f"{IMAGE}:1.0.0")
    rule = triage_rules.rule_create(
        by=champion, team=team, name="curl", action="false_positive", reason="curl is not installed", match_package="curl"
    )

    outcome = triage_rules.rule_apply_existing(rule=rule, by=champion)

    assert len(outcome.false_positive) == 1
    assert FindingEvent.objects.get(triage_rule=rule).to_status == Status.FALSE_POSITIVE
