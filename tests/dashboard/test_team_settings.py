"""A team's settings inside Vigil: champions and administrators change SLA, four-eyes, webhook and champion,
audited; the service checks the actor itself."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Membership, Role, TeamWebhook
from dashboard.services.team_settings import team_settings_update
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_champion_changes_the_teams_settings_and_the_change_is_audited(team) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    response = logged_in(champion).post(
        "/teams/payments/settings/",
        {
            "sla_critical": "3",
            "sla_high": "",
            "four_eyes": "on",
            "webhook_url": "https://hooks.example.org/T",
            "champion": member.username,
        },
    )

    team.refresh_from_db()
    record = AuditEvent.objects.get(action=AuditEvent.Action.TEAM_SETTINGS)
    assert response.status_code == 302
    assert (team.sla_days, team.four_eyes) == ({"critical": 3}, True)
    assert TeamWebhook.objects.get(team=team).url == "https://hooks.example.org/T"
    assert Membership.objects.get(team=team, user=member).role == Role.CHAMPION
    assert record.actor_id == champion.pk and record.details["before"]["four_eyes"] is False
    assert "hooks.example.org" not in str(record.details)  # the webhook URL is a secret: only whether there is one


def test_a_member_or_a_manager_may_not_change_settings_and_sees_no_link(team) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user
    manager = MembershipFactory(team=team, role=Role.MANAGER, can_triage=True).user

    with pytest.raises(ApplicationError, match="only administrators and champions"):
        team_settings_update(team=team, by=member, sla_days={}, four_eyes=True, webhook_url="")

    assert logged_in(manager).post("/teams/payments/settings/", {"four_eyes": "on"}).status_code == 403
    assert 'id="team-settings-link"' not in logged_in(member).get("/teams/payments/").content.decode()
    team.refresh_from_db()
    assert team.four_eyes is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sla_days": {"critical": "0"}}, "use 1 to 3650 days"),
        ({"sla_days": {"critical": "soon"}}, "is not a number of days"),
        ({"webhook_url": "ftp://example.com/x"}, "is not an http"),
        ({"champion": "nobody-here"}, "is not a member"),
    ],
)
def test_bad_settings_are_refused_with_the_reason_and_change_nothing(team, values, message) -> None:
    admin = UserFactory(is_staff=True)
    arguments = {"sla_days": {}, "four_eyes": True, "webhook_url": "", **values}

    with pytest.raises(ApplicationError, match=message):
        team_settings_update(team=team, by=admin, **arguments)

    team.refresh_from_db()
    assert (team.sla_days, team.four_eyes, AuditEvent.objects.count()) == ({}, False, 0)


def test_the_champion_finds_the_settings_from_the_team_page(team) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user

    page = logged_in(champion).get("/teams/payments/").content.decode()
    form = logged_in(champion).get("/teams/payments/settings/").content.decode()

    assert 'href="/teams/payments/settings/"' in page and 'id="team-settings"' in form
