"""The one read rule (visible_to) and the role table for actions: deny by default."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from dashboard.api.authentication import TokenPrincipal
from dashboard.errors import ApplicationError
from dashboard.models import Finding, Role
from dashboard.selectors.access import TRIAGE, can_accept_risk, can_triage, can_view_audit, can_view_team, ensure_can
from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def teams():
    return TeamFactory(slug="payments"), TeamFactory(slug="storefront")


def member(team, role: str, **extra):
    return MembershipFactory(team=team, role=role, **extra).user


def test_people_read_their_teams_managers_the_teams_granted_and_staff_everything_including_unowned(teams) -> None:
    payments, storefront = teams
    mine, theirs, unowned = FindingFactory(team=payments), FindingFactory(team=storefront), FindingFactory(team=None)
    champion = member(payments, Role.CHAMPION)
    manager = member(payments, Role.MANAGER)
    staff = UserFactory(is_staff=True)

    assert list(Finding.objects.visible_to(champion)) == [mine]
    assert list(Finding.objects.visible_to(manager)) == [mine]
    assert set(Finding.objects.visible_to(staff)) == {mine, theirs, unowned}
    assert list(Finding.objects.visible_to(AnonymousUser())) == []
    assert list(Finding.objects.visible_to(UserFactory())) == []


def test_an_integration_token_reads_its_team_and_the_extra_teams_it_covers_but_never_unowned(teams) -> None:
    payments, storefront = teams
    other = TeamFactory(slug="platform")
    findings = [FindingFactory(team=payments), FindingFactory(team=storefront), FindingFactory(team=other), FindingFactory(team=None)]
    token, _ = token_create(team=payments, name="falco", scope="read", extra_teams=[storefront])

    visible = set(Finding.objects.visible_to(TokenPrincipal(token)))

    assert visible == {findings[0], findings[1]}


@pytest.mark.parametrize(
    ("role", "grant", "triage", "accept"),
    [
        (Role.CHAMPION, False, True, True),
        (Role.MEMBER, False, True, False),
        (Role.MANAGER, False, False, False),
        (Role.MANAGER, True, True, True),
    ],
)
def test_roles_decide_actions_on_the_own_team(teams, role: str, grant: bool, triage: bool, accept: bool) -> None:
    payments, _ = teams
    user = member(payments, role, can_triage=grant)

    assert (can_triage(user, payments), can_accept_risk(user, payments)) == (triage, accept)


def test_nobody_acts_on_a_team_they_are_not_in_whatever_their_role_elsewhere(teams) -> None:
    payments, storefront = teams
    manager = member(payments, Role.MANAGER, can_triage=True)
    champion = member(payments, Role.CHAMPION)

    assert [can_triage(manager, storefront), can_accept_risk(manager, storefront)] == [False, False]
    assert [can_triage(champion, storefront), can_accept_risk(champion, storefront)] == [False, False]
    assert can_view_team(champion, storefront) is False


def test_only_staff_act_on_unowned_findings(teams) -> None:
    payments, _ = teams

    assert can_triage(UserFactory(is_staff=True), None) is True
    assert can_triage(member(payments, Role.CHAMPION), None) is False


@pytest.mark.parametrize(("scope", "allowed"), [("admin", True), ("read", False), ("ingest", False)])
def test_only_admin_tokens_act_and_only_on_the_teams_they_cover(teams, scope: str, allowed: bool) -> None:
    payments, storefront = teams
    token, _ = token_create(team=payments, name="bot", scope=scope)
    principal = TokenPrincipal(token)

    assert (can_triage(principal, payments), can_accept_risk(principal, payments)) == (allowed, allowed)
    assert (can_triage(principal, storefront), can_accept_risk(principal, storefront)) == (False, False)


def test_anonymous_may_do_nothing(teams) -> None:
    payments, _ = teams

    assert (can_triage(AnonymousUser(), payments), can_accept_risk(AnonymousUser(), payments), can_view_audit(AnonymousUser())) == (
        False,
        False,
        False,
    )


def test_ensure_can_raises_a_403_that_names_the_team(teams) -> None:
    payments, _ = teams
    user = member(payments, Role.MANAGER)

    with pytest.raises(ApplicationError) as refused:
        ensure_can(user, payments, TRIAGE)

    assert (refused.value.status, refused.value.code, refused.value.message) == (
        403,
        "forbidden",
        "you may not triage findings of team payments",
    )


def test_the_audit_log_is_for_staff_and_managers(teams) -> None:
    payments, _ = teams

    assert can_view_audit(UserFactory(is_staff=True)) is True
    assert can_view_audit(member(payments, Role.MANAGER)) is True
    assert can_view_audit(member(payments, Role.CHAMPION)) is False
