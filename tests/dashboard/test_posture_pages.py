"""The posture pages, the team comparison, shift left and the CSV exports: figures, links, RBAC and query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from dashboard.models import DailySnapshot, Role
from dashboard.services.snapshots import snapshot_take, snapshots_backfill
from tests.dashboard.test_posture_api import manager_of
from tests.dashboard.test_posture_snapshots import DAY, at, fixed_finding, frozen, open_finding
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["/posture/", "/posture/teams/", "/posture/shift-left/"]
EXPORTS = [f"/posture/export.csv?series={name}" for name in ("open", "flow", "time_to_fix", "sla", "age", "teams", "shift_left")]


@pytest.fixture
def teams():
    payments, storefront = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="storefront", name="Storefront")
    fixed_finding(payments, severity="critical", opened=at(DAY - dt.timedelta(days=4), 9), fixed=at(DAY, 9), due=DAY + dt.timedelta(days=3))
    open_finding(payments, severity="high", opened=at(DAY - dt.timedelta(days=40), 9), due=DAY - dt.timedelta(days=10))
    open_finding(storefront, severity="critical", opened=at(DAY - dt.timedelta(days=3), 9), due=DAY + dt.timedelta(days=4))
    with frozen(at(DAY, 22)):
        snapshots_backfill(days=60)
    return payments, storefront


def get(client, url: str):
    with frozen(at(DAY, 22)):
        return client.get(url)


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_posture_page_shows_headlines_with_their_change_and_every_chart(client, teams) -> None:
    manager_of(*teams, client=client)

    response = get(client, "/posture/?days=30")

    html = response.content.decode()
    assert response.status_code == 200
    headlines = {h.label: h for h in response.context["headlines"]}
    assert (headlines["Open"].value, headlines["Overdue"].value, headlines["Fixed within SLA"].value) == (2, 1, 100.0)
    assert headlines["Mean time to fix"].value == 4.0
    assert (headlines["Open"].previous, headlines["Open"].change) == (1, 1)  # only the 40-day-old one was open 30 days ago
    for chart in ("open-chart", "flow-chart", "ttf-chart", "sla-chart", "age-chart"):
        assert f'id="{chart}"' in html
    assert "/static/plotly/plotly.min.js" in html


def test_the_period_can_be_custom_and_a_bad_one_is_a_400(client, teams) -> None:
    manager_of(*teams, client=client)

    custom = get(client, f"/posture/?from={(DAY - dt.timedelta(days=9)).isoformat()}&to={DAY.isoformat()}")
    backwards = get(client, f"/posture/?from={DAY.isoformat()}&to={(DAY - dt.timedelta(days=9)).isoformat()}")
    nonsense = get(client, "/posture/?days=many")

    assert custom.context["period"].days == 10
    assert backwards.status_code == nonsense.status_code == 400
    assert "days must be" in nonsense.content.decode()


def test_the_team_comparison_links_each_number_to_exactly_those_findings_in_the_queue(client, teams) -> None:
    manager_of(*teams, client=client)
    MembershipFactory(team=teams[0], role=Role.CHAMPION, user=UserFactory(username="chris"))

    response = get(client, "/posture/teams/?days=30")

    html = response.content.decode()
    assert "/findings/?team=payments&amp;status=active&amp;severity=critical" in html
    assert "/findings/?team=payments&amp;sla=overdue" in html
    assert "chris" in html and "none" in html
    overdue = get(client, "/findings/?team=payments&sla=overdue")
    fixed = get(client, f"/findings/?team=payments&status=fixed&fixed_since={(DAY - dt.timedelta(days=29)).isoformat()}")
    assert [f.severity for f in overdue.context["page"].findings] == ["high"]
    assert [f.severity for f in fixed.context["page"].findings] == ["critical"]


def test_shift_left_shares_are_computed_per_team_and_class(client, teams) -> None:
    payments, _ = teams
    manager_of(payments, client=client)
    for stream in ("scan", "scan", "scan", "runtime"):
        FindingFactory(team=payments, kind="secret", stream=stream, rule_id="aws-access-key-id", first_seen=at(DAY, 8))
    with frozen(at(DAY, 22)):
        snapshot_take()

    response = get(client, "/posture/shift-left/?team=payments&days=7")

    rows = {row.klass: row for row in response.context["rows"]}
    assert rows["secrets-in-images"].counts == {"scan": 3, "runtime": 1}
    assert rows["secrets-in-images"].shares == {"scan": 0.75, "admission": 0.0, "runtime": 0.25}
    export = rows_of(get(client, "/posture/export.csv?series=shift_left&team=payments&days=7"))
    assert ["payments", "Secrets in images", "4", "0.75", "0.0", "0.25"] in export


def test_every_series_downloads_as_csv(client, teams) -> None:
    manager_of(*teams, client=client)

    exports = {url: get(client, url + "&days=30") for url in EXPORTS}

    assert {response.status_code for response in exports.values()} == {200}
    opened = rows_of(exports[EXPORTS[0]])
    assert opened[0] == ["date", "critical", "high", "medium", "low", "info", "unknown", "overdue"]
    assert opened[-1] == [DAY.isoformat(), "1", "1", "0", "0", "0", "0", "1"]
    assert len(opened) == 31
    table = rows_of(exports[EXPORTS[5]])
    assert [row[0] for row in table[1:]] == ["payments", "storefront"]
    assert get(client, "/posture/export.csv?series=everything").status_code == 400


@pytest.mark.parametrize("url", [*PAGES, *EXPORTS])
def test_another_teams_manager_sees_nothing_of_it(client, teams, url) -> None:
    _, storefront = teams
    manager_of(storefront, client=client)
    joiner = "&" if "?" in url else "?"

    theirs = get(client, f"{url}{joiner}team=payments")
    missing = get(client, f"{url}{joiner}team=no-such-team")
    mine = get(client, url)

    assert theirs.status_code == missing.status_code == 404
    assert mine.status_code == 200
    body = b"".join(mine.streaming_content) if mine.streaming else mine.content
    assert b"Payments" not in body and b"payments" not in body


@pytest.mark.parametrize("url", PAGES)
def test_a_champion_sees_their_own_teams_posture_and_anonymous_people_log_in(client, teams, url) -> None:
    payments, _ = teams
    user = MembershipFactory(team=payments, role=Role.CHAMPION).user

    anonymous = get(client, url)
    client.force_login(user)
    own = get(client, f"{url}?team=payments")
    other = get(client, f"{url}?team=storefront")

    assert anonymous.status_code == 302
    assert own.status_code == 200
    assert other.status_code == 404


@pytest.mark.parametrize("url", PAGES)
def test_the_pages_read_a_year_of_many_teams_in_few_queries(client, url, django_assert_max_num_queries) -> None:
    teams = [TeamFactory(slug=f"team-{n}") for n in range(10)]
    for team in teams:
        open_finding(team, severity="high", opened=at(DAY - dt.timedelta(days=200), 9), due=DAY)
    with frozen(at(DAY, 22)):
        snapshots_backfill(days=365)
    manager_of(*teams, client=client)

    with django_assert_max_num_queries(20) as captured:
        response = get(client, f"{url}?days=365")

    assert response.status_code == 200
    assert [q["sql"] for q in captured.captured_queries if '"dashboard_finding"' in q["sql"]] == []
    assert DailySnapshot.objects.count() == 11 * 365
