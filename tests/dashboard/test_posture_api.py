"""GET /api/v1/posture/ and /api/v1/posture/teams/: the contract, the figures, who sees what, and how few queries."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.models import Role, Status
from dashboard.services.snapshots import snapshot_take, snapshots_backfill
from dashboard.services.tokens import token_create
from tests.dashboard.test_posture_snapshots import DAY, at, fixed_finding, frozen, open_finding
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SEVERITIES = ["critical", "high", "medium", "low", "info", "unknown"]


@pytest.fixture
def teams():
    payments, storefront = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="storefront", name="Storefront")
    fixed_finding(payments, severity="critical", opened=at(DAY - dt.timedelta(days=4), 9), fixed=at(DAY, 9), due=DAY + dt.timedelta(days=3))
    late = DAY - dt.timedelta(days=3)
    fixed_finding(payments, severity="critical", opened=at(DAY - dt.timedelta(days=10), 9), fixed=at(DAY, 21), due=late)
    open_finding(payments, severity="high", opened=at(DAY - dt.timedelta(days=40), 9), due=DAY - dt.timedelta(days=10))
    open_finding(payments, severity="medium", opened=at(DAY - dt.timedelta(days=1), 9), due=DAY + dt.timedelta(days=89))
    open_finding(storefront, severity="low", opened=at(DAY - dt.timedelta(days=3), 9), due=None)
    FindingFactory(team=None, severity="high", first_seen=at(DAY - dt.timedelta(days=3), 9))  # unowned
    with frozen(at(DAY, 22)):
        snapshots_backfill(days=30)
    return payments, storefront


def manager_of(*teams, client):
    user = UserFactory(username=f"manager-{'-'.join(t.slug for t in teams)}")
    for team in teams:
        MembershipFactory(user=user, team=team, role=Role.MANAGER)
    client.force_login(user)
    return user


def get(client, url: str, **headers):
    with frozen(at(DAY, 22)):
        return client.get(url, **headers)


def test_the_posture_of_one_team_has_the_contract_shape_and_the_hand_computed_figures(client, teams) -> None:
    payments, _ = teams
    manager_of(payments, client=client)

    body = get(client, "/api/v1/posture/?team=payments&days=7").json()

    assert set(body) == {"from", "to", "summary", "series"}
    assert (body["from"], body["to"]) == ((DAY - dt.timedelta(days=6)).isoformat(), DAY.isoformat())
    assert body["summary"] == {
        "open": {"critical": 0, "high": 1, "medium": 1, "low": 0, "info": 0, "unknown": 0},
        "overdue": 1,
        "sla_compliance": 0.5,
        "mttr_days": {"critical": 7.25, "high": None, "medium": None, "low": None, "info": None, "unknown": None},
    }
    assert len(body["series"]) == 7
    last = body["series"][-1]
    assert set(last) == {"date", "open", "new", "fixed", "reopened", "overdue", "sla_compliance", "mttr_days"}
    assert (last["date"], last["fixed"], last["sla_compliance"], last["mttr_days"]["critical"]) == (DAY.isoformat(), 2, 0.5, 7.25)
    assert body["series"][0]["sla_compliance"] is None
    assert list(body["series"][0]["open"]) == SEVERITIES


def test_summary_open_equals_the_active_findings_the_findings_api_lists(client, teams) -> None:
    payments, _ = teams
    manager_of(payments, client=client)
    FindingFactory.create_batch(3, team=payments, severity="critical")
    FindingFactory(team=payments, severity="info", status=Status.TRIAGED)
    FindingFactory(team=payments, severity="info", status=Status.FALSE_POSITIVE)
    with frozen(at(DAY, 22)):
        snapshot_take()

    summary = get(client, "/api/v1/posture/?team=payments").json()["summary"]

    listed = {s: get(client, f"/api/v1/findings/?team=payments&status=active&severity={s}").json()["count"] for s in SEVERITIES}
    assert summary["open"] == listed
    assert listed["critical"] == 3


def test_summary_open_counts_findings_that_arrived_after_the_last_snapshot(client, teams) -> None:
    payments, _ = teams
    manager_of(payments, client=client)
    FindingFactory.create_batch(2, team=payments, severity="critical")  # no snapshot since

    summary = get(client, "/api/v1/posture/?team=payments").json()["summary"]
    listed = get(client, "/api/v1/findings/?team=payments&status=active&severity=critical").json()["count"]

    assert summary["open"]["critical"] == listed == 2


def test_without_a_team_a_manager_gets_the_sum_of_their_teams_and_staff_the_organisation(client, teams, admin_user) -> None:
    payments, storefront = teams
    manager_of(payments, storefront, client=client)

    mine = get(client, "/api/v1/posture/?days=1").json()["summary"]["open"]
    client.force_login(admin_user)
    everything = get(client, "/api/v1/posture/?days=1").json()["summary"]["open"]

    assert (mine["high"], mine["medium"], mine["low"]) == (1, 1, 1)
    assert everything["high"] == 2  # the unowned finding too


def test_another_teams_manager_sees_nothing_and_cannot_tell_it_from_a_team_that_does_not_exist(client, teams) -> None:
    _, storefront = teams
    manager_of(storefront, client=client)

    theirs = get(client, "/api/v1/posture/?team=payments")
    missing = get(client, "/api/v1/posture/?team=no-such-team")
    summed = get(client, "/api/v1/posture/?days=1").json()["summary"]["open"]
    table = get(client, "/api/v1/posture/teams/?days=30").json()["teams"]

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json() == {"error": {"code": "not_found", "message": "not found"}}
    assert summed == {"critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0, "unknown": 0}
    assert [row["team"] for row in table] == ["storefront"]


@pytest.mark.parametrize("days", ["0", "-3", "abc", "3651", "1.5"])
def test_a_bad_day_count_is_a_400_in_the_one_error_shape(client, teams, days) -> None:
    manager_of(teams[0], client=client)

    response = get(client, f"/api/v1/posture/?days={days}")
    table = get(client, f"/api/v1/posture/teams/?days={days}")

    assert response.status_code == table.status_code == 400
    assert response.json()["error"]["code"] == "invalid_days"


def test_tokens_need_the_read_scope_and_see_only_their_team(client, teams) -> None:
    payments, storefront = teams
    read = token_create(team=storefront, name="ci", scope="read")[1]
    ingest = token_create(team=payments, name="ci-ingest", scope="ingest")[1]

    own = get(client, "/api/v1/posture/?team=storefront", HTTP_AUTHORIZATION=f"Bearer {read}")
    other = get(client, "/api/v1/posture/?team=payments", HTTP_AUTHORIZATION=f"Bearer {read}")
    wrong_scope = get(client, "/api/v1/posture/", HTTP_AUTHORIZATION=f"Bearer {ingest}")
    anonymous = get(client, "/api/v1/posture/")

    assert own.status_code == 200
    assert own.json()["summary"]["open"]["low"] == 1
    assert other.status_code == 404
    assert wrong_scope.status_code == 403
    assert anonymous.status_code in (401, 403)
    assert set(anonymous.json()) == {"error"}


def test_the_comparison_table_as_json(client, teams) -> None:
    payments, storefront = teams
    manager_of(payments, storefront, client=client)
    MembershipFactory(team=payments, role=Role.CHAMPION, user=UserFactory(username="chris"))

    body = get(client, "/api/v1/posture/teams/?days=30").json()

    rows = {row["team"]: row for row in body["teams"]}
    assert rows["payments"]["open_high"] == 1
    assert rows["payments"]["overdue"] == 1
    assert rows["payments"]["sla_compliance"] == 0.5
    assert rows["payments"]["champions"] == ["chris"]
    assert rows["storefront"]["champions"] == []
    assert rows["storefront"]["sla_compliance"] is None
    assert rows["payments"]["median_ttf_days"] is not None


def test_the_api_reads_a_years_snapshots_of_many_teams_in_few_queries(client, django_assert_max_num_queries) -> None:
    teams = [TeamFactory(slug=f"team-{n}") for n in range(12)]
    for team in teams:
        open_finding(team, severity="high", opened=at(DAY - dt.timedelta(days=200), 9), due=DAY)
    with frozen(at(DAY, 22)):
        snapshots_backfill(days=365)
    manager_of(*teams, client=client)

    with django_assert_max_num_queries(12):
        series = get(client, "/api/v1/posture/?days=365").json()["series"]
    with django_assert_max_num_queries(14):
        table = get(client, "/api/v1/posture/teams/?days=365").json()["teams"]

    assert len(series) == 365
    assert series[-1]["open"]["high"] == 12
    assert len(table) == 12
