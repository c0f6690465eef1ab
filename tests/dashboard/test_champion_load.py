"""Champion load: each champion's open and overdue work, teams without a champion, the nudge backlog; who sees what."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from dashboard.models import NudgeState, Role, Status
from dashboard.selectors.champion_load import champion_load
from tests.factories import FindingFactory, MembershipFactory, NudgeFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    """alice champions Payments and Storefront, bob Storefront too; Platform has none.

    Payments: 4 open (2 overdue, 1 critical, 1 high), 1 fixed and overdue (never counted); 2 nudges waiting, 1 done.
    Storefront: 1 open medium, not overdue; 1 snoozed nudge.  Platform: 2 open, 1 overdue; 1 opened nudge.
    """
    teams = {slug: TeamFactory(slug=slug, name=slug.title()) for slug in ("payments", "storefront", "platform")}
    alice, bob = UserFactory(username="alice", first_name="Alice"), UserFactory(username="bob")
    MembershipFactory(user=alice, team=teams["payments"], role=Role.CHAMPION)
    MembershipFactory(user=alice, team=teams["storefront"], role=Role.CHAMPION)
    MembershipFactory(user=bob, team=teams["storefront"], role=Role.CHAMPION)
    MembershipFactory(team=teams["payments"], role=Role.MEMBER)
    today = timezone.localdate()
    late, later = today - dt.timedelta(days=3), today + dt.timedelta(days=20)
    for severity, due, status in [
        ("critical", late, Status.OPEN),
        ("high", late, Status.TRIAGED),
        ("medium", later, Status.IN_PROGRESS),
        ("low", None, Status.OPEN),
        ("critical", late, Status.FIXED),
    ]:
        FindingFactory(team=teams["payments"], severity=severity, due_date=due, status=status)
    FindingFactory(team=teams["storefront"], severity="medium", due_date=later)
    FindingFactory(team=teams["platform"], severity="low", due_date=late)
    FindingFactory(team=teams["platform"], severity="low", due_date=later)
    week_ago = timezone.now() - dt.timedelta(days=7)
    NudgeFactory(team=teams["payments"], state=NudgeState.NEW, created_at=week_ago)
    NudgeFactory(team=teams["payments"], state=NudgeState.OPENED)
    NudgeFactory(team=teams["payments"], state=NudgeState.DONE, created_at=week_ago - dt.timedelta(days=30))
    NudgeFactory(team=teams["storefront"], state=NudgeState.SNOOZED)
    NudgeFactory(team=teams["platform"], state=NudgeState.OPENED)
    NudgeFactory(team=teams["platform"], state=NudgeState.DISMISSED)
    return teams


def manager_of(teams, *slugs: str):
    user = UserFactory()
    for slug in slugs:
        MembershipFactory(user=user, team=teams[slug], role=Role.MANAGER)
    return user


def loads(table) -> list[tuple[str, list[tuple[str, int, int, int, int]]]]:
    return [
        (c.username, [(load.team.slug, load.open, load.overdue, load.critical_high, load.nudges) for load in c.teams])
        for c in table.champions
    ]


def test_a_manager_sees_each_champions_work_and_the_teams_without_one(org) -> None:
    table = champion_load(user=manager_of(org, "payments", "storefront", "platform"))

    assert loads(table) == [
        ("alice", [("payments", 4, 2, 2, 2), ("storefront", 1, 0, 0, 1)]),
        ("bob", [("storefront", 1, 0, 0, 1)]),
    ]
    alice = table.champions[0]
    assert (alice.open, alice.overdue, alice.critical_high, alice.nudges, alice.name) == (5, 2, 2, 3, "Alice")
    assert alice.teams[0].oldest_nudge_days == 7
    assert [(load.team.slug, load.open, load.overdue, load.nudges) for load in table.without_champion] == [("platform", 2, 1, 1)]


def test_a_manager_sees_only_the_teams_granted(org) -> None:
    table = champion_load(user=manager_of(org, "storefront"))

    assert loads(table) == [("alice", [("storefront", 1, 0, 0, 1)]), ("bob", [("storefront", 1, 0, 0, 1)])]
    assert table.without_champion == []


def test_a_champion_sees_only_their_team_and_another_teams_manager_nothing(org) -> None:
    bob = UserFactory(username="bob")
    outsider = MembershipFactory(team=TeamFactory(slug="mobile"), role=Role.MANAGER).user

    assert loads(champion_load(user=bob)) == [("alice", [("storefront", 1, 0, 0, 1)]), ("bob", [("storefront", 1, 0, 0, 1)])]
    assert (champion_load(user=outsider).champions, [load.team.slug for load in champion_load(user=outsider).without_champion]) == (
        [],
        ["mobile"],
    )


def test_the_query_count_does_not_grow_with_the_teams(org, django_assert_max_num_queries) -> None:
    manager = manager_of(org, "payments", "storefront", "platform")
    for index in range(10):
        team = TeamFactory(slug=f"extra-{index}")
        MembershipFactory(user=manager, team=team, role=Role.MANAGER)
        MembershipFactory(team=team, role=Role.CHAMPION)
        FindingFactory(team=team)
        NudgeFactory(team=team)

    with django_assert_max_num_queries(4):
        table = champion_load(user=manager)

    assert len(table.champions) == 12


def test_the_page_and_csv_show_the_table(org, client, django_assert_max_num_queries) -> None:
    client.force_login(manager_of(org, "payments", "platform"))

    with django_assert_max_num_queries(8):
        html = client.get("/posture/champions/").content.decode()
    rows = list(csv.reader(io.StringIO(b"".join(client.get("/posture/champions/export.csv").streaming_content).decode())))

    assert '/findings/?team=payments&amp;status=active&amp;sla=overdue">2</a>' in html
    assert "Storefront" not in html
    assert rows == [
        ["champion", "team", "open", "overdue", "critical_high", "nudge_backlog", "oldest_nudge_days"],
        ["alice", "payments", "4", "2", "2", "2", "7"],
        ["", "platform", "2", "1", "0", "1", "0"],
    ]


def test_another_teams_manager_gets_an_empty_page_and_csv(org, client) -> None:
    client.force_login(manager_of({"mobile": TeamFactory(slug="mobile")}, "mobile"))

    html = client.get("/posture/champions/").content.decode()
    rows = list(csv.reader(io.StringIO(b"".join(client.get("/posture/champions/export.csv").streaming_content).decode())))

    assert "alice" not in html and "Payments" not in html
    assert rows == [
        ["champion", "team", "open", "overdue", "critical_high", "nudge_backlog", "oldest_nudge_days"],
        ["", "mobile", "0", "0", "0", "0", ""],
    ]


def test_anonymous_visitors_are_sent_to_log_in(client) -> None:
    assert client.get("/posture/champions/").status_code == 302
    assert client.get("/posture/champions/export.csv").status_code == 302
    assert client.get("/base-images/").status_code == 302
