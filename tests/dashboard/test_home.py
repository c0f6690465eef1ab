"""The champion's home: what needs attention today, each with a count and a link to the filtered queue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import HomeVisit, Role, Status
from dashboard.services import home
from dashboard.templatetags.triage import queue_url
from tests.factories import FindingEventFactory, FindingFactory, MembershipFactory, RiskAcceptanceFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments", four_eyes=True)


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user


@pytest.fixture
def client(champion) -> Client:
    client = Client()
    client.force_login(champion)
    return client


@pytest.fixture
def morning(team, champion):
    """Yesterday evening's visit, then what happened overnight."""
    now = timezone.now()
    today = timezone.localdate()
    home.home_visit(user=champion, now=now - dt.timedelta(hours=15))
    old = now - dt.timedelta(days=30)
    FindingFactory(team=team, severity="critical", first_seen=now - dt.timedelta(hours=2))
    FindingFactory(team=team, severity="high", first_seen=now - dt.timedelta(hours=3), assignee=champion)
    FindingFactory(team=team, first_seen=old, due_date=today - dt.timedelta(days=1))
    FindingFactory(team=team, first_seen=old, due_date=today + dt.timedelta(days=6))
    FindingFactory(team=team, first_seen=old, stream="admission", kind="policy", source="kyverno", last_seen=now - dt.timedelta(days=1))
    FindingFactory(team=team, first_seen=old, stream="runtime", kind="runtime", source="falco", last_seen=now - dt.timedelta(hours=1))
    FindingFactory(team=team, first_seen=old, stream="runtime", kind="runtime", source="falco", last_seen=now - dt.timedelta(days=9))
    accepted = FindingFactory.create_batch(2, team=team, first_seen=old, status=Status.RISK_ACCEPTED)
    RiskAcceptanceFactory(team=team, expires=today + dt.timedelta(days=10), findings=accepted)
    FindingFactory(team=TeamFactory(slug="storefront"), severity="critical")
    back = FindingFactory(team=team, first_seen=old, status_changed_at=now - dt.timedelta(hours=1))
    FindingEventFactory(finding=back, type="reopened", from_status="fixed", created_at=now - dt.timedelta(hours=1))
    earlier = FindingFactory(team=team, first_seen=old, status_changed_at=now - dt.timedelta(hours=20))
    FindingEventFactory(finding=earlier, type="reopened", from_status="fixed", created_at=now - dt.timedelta(hours=20))
    return now


def cards(response) -> dict[str, tuple[int, str]]:
    return {card.key: (card.count, queue_url(card.query)) for card in response.context["summary"].cards}


def test_home_is_the_champions_morning_not_a_redirect(client, morning) -> None:
    response = client.get("/")

    since = response.context["summary"].since
    stamp = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M:%S").replace(":", "%3A")
    assert response.status_code == 200
    assert since == (morning - dt.timedelta(hours=15)).replace(microsecond=0)
    assert cards(response) == {
        "new": (2, f"/findings/?team=payments&since={stamp}&status=active"),
        "reopened": (1, f"/findings/?team=payments&reopened_since={stamp}&status=active"),
        "overdue": (1, "/findings/?team=payments&sla=overdue&sort=due"),
        "due_soon": (1, "/findings/?team=payments&sla=due_soon&sort=due"),
        "expiring": (2, "/findings/?team=payments&expiring=14&status=risk_accepted"),
        "denials": (1, "/findings/?team=payments&stream=admission&seen_days=7&status=active"),
        "alerts": (1, "/findings/?team=payments&stream=runtime&seen_days=7&status=active"),
        "mine": (1, "/findings/?team=payments&assignee=me&status=active"),
    }
    assert response.context["summary"].cards[0].hint == "1 critical"


def test_each_card_link_opens_the_queue_with_the_same_count(client, morning) -> None:
    home = client.get("/")

    counts = {key: client.get(url).context["page"].count for key, (_, url) in cards(home).items()}

    assert counts == {key: count for key, (count, _) in cards(home).items()}


def test_new_since_last_visit_counts_from_the_previous_session_of_work(champion) -> None:
    evening = timezone.now() - dt.timedelta(hours=15)
    home.home_visit(user=champion, now=evening)

    first = home.home_visit(user=champion, now=evening + dt.timedelta(hours=14))
    reload = home.home_visit(user=champion, now=evening + dt.timedelta(hours=14, minutes=20))

    assert first == evening
    assert reload == evening
    assert HomeVisit.objects.get(user=champion).last == evening + dt.timedelta(hours=14, minutes=20)


def test_a_second_champion_sees_a_request_to_approve_and_the_requester_sees_it_waiting(team, champion) -> None:
    second = MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="sam")).user
    acceptance = RiskAcceptanceFactory(
        team=team, requested_by=champion, approved_by=None, state="pending", findings=FindingFactory.create_batch(3, team=team)
    )
    other = Client()
    other.force_login(second)
    mine = Client()
    mine.force_login(champion)

    to_approve = other.get("/").context["summary"].to_approve
    waiting = mine.get("/").context["summary"]

    assert [(a.pk, a.n) for a in to_approve] == [(acceptance.pk, 3)]
    assert (waiting.to_approve, [a.pk for a in waiting.waiting]) == ([], [acceptance.pk])


def test_the_home_page_query_count_is_pinned(client, morning, django_assert_num_queries) -> None:
    with django_assert_num_queries(21):
        response = client.get("/")

    assert response.status_code == 200


def test_a_finding_reopened_after_a_later_triage_still_counts_as_reopened(client, champion, team) -> None:
    now = timezone.now()
    home.home_visit(user=champion, now=now - dt.timedelta(hours=15))
    changed = now - dt.timedelta(hours=1)
    back = FindingFactory(team=team, first_seen=now - dt.timedelta(days=40), status="triaged", status_changed_at=changed)
    FindingEventFactory(finding=back, type="reopened", from_status="fixed", created_at=now - dt.timedelta(hours=2))

    reopened = cards(client.get("/"))["reopened"][0]

    assert reopened == 1


def test_the_worklist_lists_the_ten_riskiest_findings_that_need_work(client, team) -> None:
    risky = [FindingFactory(team=team, risk_score=50 + n) for n in range(12)]
    FindingFactory(team=team, risk_score=99, status=Status.FALSE_POSITIVE)
    FindingFactory(team=TeamFactory(slug="storefront"), risk_score=98)

    response = client.get("/")

    assert [f.pk for f in response.context["summary"].worklist] == [f.pk for f in reversed(risky)][:10]
    assert response.content.decode().count('<tr data-id="') == 10


def test_a_manager_without_the_triage_grant_gets_no_approve_form_where_approving_would_fail(team, champion) -> None:
    acceptance = RiskAcceptanceFactory(
        team=team, requested_by=champion, approved_by=None, state="pending", findings=FindingFactory.create_batch(2, team=team)
    )
    manager = Client()
    manager.force_login(MembershipFactory(team=team, role=Role.MANAGER, can_triage=False).user)

    home_page = manager.get("/")
    listed = manager.get("/acceptances/").content.decode()

    assert home_page.context["summary"].to_approve == []
    assert f"Approve #{acceptance.pk}" not in home_page.content.decode()
    assert f"Approve #{acceptance.pk}" not in listed and "waiting for a second person" in listed


def test_a_second_champion_gets_the_approve_form_on_the_acceptances_page(team, champion) -> None:
    acceptance = RiskAcceptanceFactory(
        team=team, requested_by=champion, approved_by=None, state="pending", findings=FindingFactory.create_batch(2, team=team)
    )
    second = Client()
    second.force_login(MembershipFactory(team=team, role=Role.CHAMPION).user)

    listed = second.get("/acceptances/").content.decode()

    assert f"Approve #{acceptance.pk}" in listed
