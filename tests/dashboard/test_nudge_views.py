"""What champions and managers do with nudges: pages, actions, the API contract, and who may do what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import NudgeState
from dashboard.services.nudges import nudge_complete, nudge_dismiss, nudge_open, nudge_snooze
from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, MembershipFactory, NudgeFactory, TeamFactory, TopicFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def champion(team):
    user = UserFactory(username="champion")
    MembershipFactory(user=user, team=team, role="champion")
    return user


@pytest.fixture
def nudge(team):
    topic = TopicFactory(slug="root-containers", name="Containers running as root", summary="Run as a user, not root.")
    made = NudgeFactory(
        team=team, topic=topic, reason="“Containers running as root” came up 3 times.", created_at=NOW - dt.timedelta(days=1)
    )
    made.findings.set([FindingFactory(team=team, rule_id="KSV012", kind="misconfiguration", package_name="") for _ in range(3)])
    return made


# --- services ----------------------------------------------------------------------------------


def test_open_then_done_shared_records_who_and_when(nudge, champion) -> None:
    nudge_open(nudge=nudge, by=champion, now=NOW)
    nudge_complete(nudge=nudge, by=champion, shared_with_team=True, now=NOW + dt.timedelta(hours=2))

    nudge.refresh_from_db()
    assert (nudge.state, nudge.opened_at, nudge.completed_at, nudge.shared_with_team, nudge.acted_by) == (
        "done",
        NOW,
        NOW + dt.timedelta(hours=2),
        True,
        champion,
    )


def test_snooze_and_dismiss_need_sensible_input(nudge, champion) -> None:
    nudge_snooze(nudge=nudge, by=champion, days=7, now=NOW)
    with pytest.raises(ApplicationError, match="snooze for 1 to 30 days"):
        nudge_snooze(nudge=nudge, by=champion, days=31, now=NOW)
    with pytest.raises(ApplicationError, match="tell us why you dismiss it"):
        nudge_dismiss(nudge=nudge, by=champion, reason="  ")
    nudge_dismiss(nudge=nudge, by=champion, reason="We already know this", now=NOW)

    nudge.refresh_from_db()
    assert (nudge.state, nudge.snooze_until, nudge.dismissed_at, nudge.dismiss_reason) == ("dismissed", None, NOW, "We already know this")


def test_a_manager_without_the_triage_grant_can_read_but_not_act(nudge, team) -> None:
    manager = UserFactory(username="boss")
    MembershipFactory(user=manager, team=team, role="manager")

    with pytest.raises(ApplicationError, match="only the champion and members of Payments can act on its nudges"):
        nudge_complete(nudge=nudge, by=manager)


# --- pages -------------------------------------------------------------------------------------


def test_the_team_page_shows_the_champion_the_nudge_with_why_and_actions(client, nudge, champion, django_assert_max_num_queries) -> None:
    client.force_login(champion)

    with django_assert_max_num_queries(40):
        response = client.get("/teams/payments/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Learning nudges" in body
    assert "Why you see this:</strong> “Containers running as root” came up 3 times." in body
    assert f'action="/nudges/{nudge.pk}/done/"' in body
    assert "<script>" not in body


def test_the_panel_queries_do_not_grow_with_the_number_of_nudges(client, nudge, champion, team, django_assert_num_queries) -> None:
    client.force_login(champion)
    client.get("/teams/payments/")
    with CaptureQueriesContext(connection) as one:
        client.get("/teams/payments/")
    NudgeFactory.create_batch(3, team=team)
    with django_assert_num_queries(len(one.captured_queries)):
        client.get("/teams/payments/")


def test_the_champion_completes_a_nudge_from_its_page(client, nudge, champion) -> None:
    client.force_login(champion)

    page = client.get(f"/nudges/{nudge.pk}/")
    response = client.post(f"/nudges/{nudge.pk}/done/", {"shared": "1", "next": "/teams/payments/"})

    nudge.refresh_from_db()
    assert page.status_code == 200
    assert "The findings that triggered it (3)" in page.content.decode()
    assert response.status_code == 302 and response["Location"] == "/teams/payments/"
    assert (nudge.state, nudge.shared_with_team) == ("done", True)


def test_opening_from_javascript_answers_json_and_never_redirects_elsewhere(client, nudge, champion) -> None:
    client.force_login(champion)

    opened = client.post(f"/nudges/{nudge.pk}/open/", HTTP_ACCEPT="application/json")
    plain = client.post(f"/nudges/{nudge.pk}/open/", {"next": "https://evil.example.com/"})

    assert opened.json() == {"id": nudge.pk, "state": "opened", "label": "Opened"}
    assert (plain.status_code, plain["Location"]) == (302, f"/nudges/{nudge.pk}/")


def test_dismissing_without_a_reason_explains_what_is_missing(client, nudge, champion) -> None:
    client.force_login(champion)

    response = client.post(f"/nudges/{nudge.pk}/dismiss/", {"reason": ""}, follow=True)

    nudge.refresh_from_db()
    assert nudge.state == NudgeState.NEW
    assert "tell us why you dismiss it" in response.content.decode()


def test_another_teams_nudge_is_not_found(client, nudge) -> None:
    outsider = UserFactory(username="outsider")
    MembershipFactory(user=outsider, team=TeamFactory(slug="storefront"), role="champion")
    client.force_login(outsider)

    assert client.get(f"/nudges/{nudge.pk}/").status_code == 404
    assert client.post(f"/nudges/{nudge.pk}/done/").status_code == 404


def test_the_list_filters_in_the_url_and_paginates(client, nudge, champion, team) -> None:
    NudgeFactory.create_batch(26, team=team, state=NudgeState.DONE, created_at=NOW - dt.timedelta(days=40))
    client.force_login(champion)

    active = client.get("/nudges/")
    done = client.get("/nudges/?state=done&page=2")

    assert active.context["page"].paginator.count == 1
    assert (done.context["page"].paginator.count, len(done.context["page"].object_list)) == (26, 1)


def test_the_impact_page_shows_managers_champion_engagement(client, nudge, team, django_assert_max_num_queries) -> None:
    manager = UserFactory(username="boss")
    MembershipFactory(user=manager, team=team, role="manager")
    TeamFactory(slug="platform", name="Platform")
    nudge_open(nudge=nudge, by=UserFactory(is_staff=True), now=NOW)
    nudge_complete(nudge=nudge, by=UserFactory(is_staff=True), now=NOW + dt.timedelta(hours=30))
    client.force_login(manager)

    with django_assert_max_num_queries(25):
        response = client.get("/nudges/impact/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "Champion engagement" in body
    assert [(e.team.slug, e.champions, e.nudges, e.opened, e.done, e.median_hours_to_complete) for e in response.context["engagement"]] == [
        ("payments", [], 1, 1, 1, 54.0)
    ]
    assert 'data-figure="impact-data"' in body


# --- API ---------------------------------------------------------------------------------------


def test_api_lists_a_teams_nudges_with_the_contract_fields(client, nudge, team, django_assert_max_num_queries) -> None:
    token = token_create(team=team, name="ci", scope="read")[1]

    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/nudges/?team=payments", HTTP_AUTHORIZATION=f"Bearer {token}")

    body = response.json()
    item = body["results"][0]
    assert response.status_code == 200
    assert body["count"] == 1
    assert {key: item[key] for key in ("id", "team", "topic", "state", "findings")} == {
        "id": nudge.pk,
        "team": "payments",
        "topic": "root-containers",
        "state": "new",
        "findings": 3,
    }
    assert item["module"] == {"title": nudge.module.title, "url": nudge.module.url, "provider": "Example docs", "minutes": 15}
    assert item["created_at"] == timezone.localtime(nudge.created_at).isoformat().replace("+00:00", "Z")


def test_api_is_scoped_to_what_the_caller_may_read(client, nudge, team) -> None:
    other = TeamFactory(slug="storefront")
    NudgeFactory(team=other)
    token = token_create(team=other, name="ci", scope="read")[1]
    ingest_only = token_create(team=team, name="ci-ingest", scope="ingest")[1]

    mine = client.get("/api/v1/nudges/", HTTP_AUTHORIZATION=f"Bearer {token}")
    theirs = client.get("/api/v1/nudges/?team=payments", HTTP_AUTHORIZATION=f"Bearer {token}")
    wrong_scope = client.get("/api/v1/nudges/", HTTP_AUTHORIZATION=f"Bearer {ingest_only}")
    bad_state = client.get("/api/v1/nudges/?state=later", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert [item["team"] for item in mine.json()["results"]] == ["storefront"]
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "not_found")
    assert wrong_scope.status_code == 403
    assert bad_state.json()["error"]["code"] == "invalid_state"
