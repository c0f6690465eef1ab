"""The demo shows what a team has after a few months (dashboard/services/demo_history.py)."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from dashboard.models import EpssScore, KevEntry, Membership, Nudge, NudgeState, OwnershipRule, RiskAcceptance, Role, Status, TriageRule
from dashboard.selectors.toxic import toxic_combinations
from dashboard.services.demo import LOGIN_NOTES, USERS
from dashboard.services.demo_history import demo_history
from dashboard.services.running import forget_written
from tests.factories import (
    FindingFactory,
    FindingOccurrenceFactory,
    ImageFactory,
    KevEntryFactory,
    MembershipFactory,
    NudgeFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    teams = {slug: TeamFactory(slug=slug) for slug in ("payments", "storefront", "platform")}
    users = {"admin": UserFactory(username="admin", is_staff=True, is_superuser=True)}
    users["champion"] = MembershipFactory(team=teams["payments"], role=Role.CHAMPION, user=UserFactory(username="champion")).user
    users["storefront-champion"] = MembershipFactory(
        team=teams["storefront"], role=Role.CHAMPION, user=UserFactory(username="storefront-champion")
    ).user
    users["manager"] = UserFactory(username="manager")
    for team in teams.values():
        MembershipFactory(team=team, role=Role.MANAGER, user=users["manager"])
    FindingFactory.create_batch(6, team=teams["payments"])
    FindingFactory.create_batch(3, team=teams["storefront"])
    NudgeFactory.create_batch(3, team=teams["storefront"], state=NudgeState.NEW)
    return users, teams


def test_the_demo_history_has_intel_rules_acceptances_and_nudges_in_several_states(world) -> None:
    users, teams = world
    today = timezone.localdate()

    demo_history(users=users, teams=teams, today=today)

    assert list(KevEntry.objects.order_by("cve").values_list("cve", "due_date", "known_ransomware")) == [
        ("CVE-1999-0002", None, "Known"),
        ("CVE-2020-15999", dt.date(2021, 11, 17), "Unknown"),
    ]
    assert list(EpssScore.objects.order_by("cve").values_list("cve", "epss", "percentile")) == [
        ("CVE-1999-0001", 0.03, 0.42),
        ("CVE-1999-0002", 0.08, 0.53),
    ]
    assert Membership.objects.get(user=users["manager"], team=teams["platform"]).can_triage is True
    assert OwnershipRule.objects.count() == 3 and TriageRule.objects.filter(team=teams["payments"]).count() == 1
    expiring = RiskAcceptance.objects.get(team=teams["payments"])
    assert (expiring.state, expiring.expires) == (RiskAcceptance.State.APPROVED, today + dt.timedelta(days=5))
    assert RiskAcceptance.objects.get(team=teams["storefront"]).state == RiskAcceptance.State.PENDING
    assert set(teams["payments"].findings.values_list("status", flat=True)) >= {
        Status.IN_PROGRESS,
        Status.TRIAGED,
        Status.FALSE_POSITIVE,
        Status.RISK_ACCEPTED,
    }
    assert sorted(Nudge.objects.filter(team=teams["storefront"]).values_list("state", flat=True)) == sorted(
        [NudgeState.OPENED, NudgeState.SNOOZED, NudgeState.DISMISSED]
    )


def test_load_demo_on_a_database_with_the_demo_prints_every_demo_login() -> None:
    TeamFactory(slug="payments")  # the database has data: the demo is not loaded again
    for username, _, _ in USERS:
        UserFactory(username=username)
    out = StringIO()

    call_command("load_demo", "--if-empty", stdout=out)

    printed = out.getvalue()
    assert printed.startswith("database already has data: demo not loaded")
    assert all(f"  {username}" in printed for username in LOGIN_NOTES) and "vigil-demo" in printed
    assert {username for username, _, _ in USERS} == set(LOGIN_NOTES)


def test_the_demo_ledger_runs_a_kev_cve_so_the_queue_and_the_toxic_view_show_intel(world) -> None:
    users, teams = world
    ledger = ImageFactory(team=teams["payments"], registry="registry.example.com", repository="payments/ledger")
    kev = FindingFactory(team=teams["payments"], image=ledger, rule_id="CVE-1999-0002", severity="critical", risk_score=0)
    FindingOccurrenceFactory(finding=kev, tag="3.1.0")
    forget_written()  # the sightings another test in this thread sent

    demo_history(users=users, teams=teams, today=timezone.localdate())

    kev.refresh_from_db()
    assert (kev.kev, kev.epss, kev.exposed) == (True, 0.08, True)
    assert [row.finding.pk for row in toxic_combinations(user=users["champion"], team=teams["payments"])] == [kev.pk]


def test_a_kev_row_without_dates_shows_no_empty_added_or_due_on_the_finding_page(world) -> None:
    users, teams = world
    finding = FindingFactory(team=teams["payments"], rule_id="CVE-1999-0002", kev=True)
    KevEntryFactory(cve="CVE-1999-0002", date_added=None, due_date=None, known_ransomware="Known")
    client = Client()
    client.force_login(users["champion"])

    page = client.get(f"/findings/{finding.pk}/").content.decode()

    kev = re.search(r"<dt>CISA KEV</dt><dd>(.*?)</dd>", page, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", kev) == "known exploited · used in ransomware"
