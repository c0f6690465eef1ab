"""The policy pages: the list with recent decisions, editing a team's policy, its history, and who may."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import EnforcementPolicy, Role
from tests.factories import GateDecisionFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

FORM = {"mode": "enforce", "min_severity": "high", "fix_required": "on", "kev": "on", "unknown_image": "warn", "epss_min": "0.3"}


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


def login(team, role: str | None, *, staff: bool = False, can_triage: bool = False) -> Client:
    user = UserFactory(is_staff=staff)
    if role is not None:
        MembershipFactory(user=user, team=team, role=role, can_triage=can_triage)
    client = Client()
    client.force_login(user)
    return client


def test_a_champion_edits_the_policy_and_sees_its_history(team) -> None:
    client = login(team, Role.CHAMPION)
    form = {**FORM, "namespace_modes": "payments-prod=enforce\npayments-dev=audit", "rule_ids": "KSV012\n\nCVE-2024-*", "reason": "go-live"}
    response = client.post("/policies/teams/payments/", form, follow=True)
    policy = EnforcementPolicy.objects.get(team=team)
    assert (policy.mode, policy.min_severity, policy.epss_min, policy.version) == ("enforce", "high", 0.3, 1)
    assert (policy.namespace_modes, policy.rule_ids, policy.secrets) == (
        {"payments-prod": "enforce", "payments-dev": "audit"},
        ["KSV012", "CVE-2024-*"],
        False,
    )
    page = response.content.decode()
    assert "Saved: the policy is now at version 1." in page
    assert "go-live" in page and "v1" in page


def test_a_bad_namespace_line_is_shown_and_saves_nothing(team) -> None:
    response = login(team, Role.CHAMPION).post("/policies/teams/payments/", {**FORM, "namespace_modes": "payments-prod"})
    assert (response.status_code, "one namespace=mode per line" in response.content.decode()) == (200, True)
    assert EnforcementPolicy.objects.count() == 0


@pytest.mark.parametrize(
    ("role", "can_triage", "status"), [(Role.MEMBER, False, 403), (Role.MANAGER, False, 403), (Role.MANAGER, True, 302)]
)
def test_who_may_save(team, role: str, can_triage: bool, status: int) -> None:
    client = login(team, role, can_triage=can_triage)
    assert client.get("/policies/teams/payments/").status_code == 200
    assert client.post("/policies/teams/payments/", FORM).status_code == status
    assert EnforcementPolicy.objects.filter(mode="enforce").count() == int(status == 302)


def test_a_member_reads_the_policy_without_a_form(team) -> None:
    page = login(team, Role.MEMBER).get("/policies/teams/payments/").content.decode()
    assert ("Save policy" in page, "Only the team's champion" in page) == (False, True)


def test_other_teams_policies_answer_404(team) -> None:
    client = login(TeamFactory(slug="storefront"), Role.CHAMPION)
    assert (client.get("/policies/teams/payments/").status_code, client.post("/policies/teams/payments/", FORM).status_code) == (404, 404)


def test_the_organisation_default_is_for_staff(team) -> None:
    champion = login(team, Role.CHAMPION)
    assert (champion.get("/policies/default/").status_code, champion.post("/policies/default/", FORM).status_code) == (200, 403)
    staff = login(team, None, staff=True)
    assert staff.post("/policies/default/", {**FORM, "mode": "audit"}).status_code == 302
    assert EnforcementPolicy.objects.get(team__isnull=True).mode == "audit"


def test_the_list_shows_decisions_of_the_teams_one_reads(team) -> None:
    other = TeamFactory(slug="storefront")
    for owner, ref in ((team, "registry.example.com/payments/api:1"), (other, "registry.example.com/storefront/web:2")):
        GateDecisionFactory(image_ref=ref, team=owner)
    page = login(team, Role.MEMBER).get("/policies/").content.decode()
    assert ("registry.example.com/payments/api:1" in page, "registry.example.com/storefront/web:2" in page) == (True, False)
    assert "Organisation default" in page
