"""The triage queue: filters kept in the URL, sorting, keyset pagination, bulk actions, CSV export, query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import Finding, FindingEvent, Role, Status
from dashboard.selectors import queue
from dashboard.selectors.findings import FindingFilters, finding_list
from tests.factories import FindingEventFactory, FindingFactory, ImageFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user


@pytest.fixture
def client(champion) -> Client:
    client = Client()
    client.force_login(champion)
    return client


@pytest.fixture
def findings(team, champion):
    """Five findings of the team that differ in every filter, and one of another team."""
    today = timezone.localdate()
    now = timezone.now()
    api = ImageFactory(team=team, registry="registry.example.com", repository="payments/api")
    worker = ImageFactory(team=team, registry="registry.example.com", repository="payments/worker")
    return {
        "A": FindingFactory(
            team=team,
            image=api,
            title="A",
            rule_id="CVE-2021-44228",
            severity="critical",
            kev=True,
            epss=0.9,
            fixed_version="2.17.1",
            exposed=True,
            assignee=champion,
            due_date=today - dt.timedelta(days=2),
            risk_score=90,
            package_name="log4j-core",
            first_seen=now - dt.timedelta(days=20),
        ),
        "B": FindingFactory(
            team=team,
            image=worker,
            title="B",
            rule_id="CVE-2023-1111",
            severity="high",
            epss=0.05,
            source="grype",
            due_date=today + dt.timedelta(days=3),
            risk_score=45,
            package_name="zlib",
            first_seen=now - dt.timedelta(days=1),
        ),
        "C": FindingFactory(
            team=team,
            image=api,
            title="C",
            rule_id="Terminal shell in container",
            kind="runtime",
            stream="runtime",
            source="falco",
            severity="low",
            status=Status.TRIAGED,
            due_date=today + dt.timedelta(days=60),
            risk_score=20,
            package_name="",
            last_seen=now - dt.timedelta(days=30),
            first_seen=now - dt.timedelta(days=40),
        ),
        "D": FindingFactory(
            team=team,
            image=worker,
            title="D",
            severity="medium",
            status=Status.FALSE_POSITIVE,
            risk_score=30,
            first_seen=now - dt.timedelta(days=5),
        ),
        "E": FindingFactory(team=TeamFactory(slug="storefront"), title="E", severity="critical", risk_score=99),
    }


def titles(response) -> list[str]:
    return [f.title for f in response.context["page"].findings]


def test_the_queue_defaults_to_what_needs_work_ordered_by_risk_and_hides_other_teams(client, findings) -> None:
    response = client.get("/findings/")

    assert response.status_code == 200
    assert titles(response) == ["A", "B", "C"]
    assert response.context["page"].count == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=", ["A", "B", "D", "C"]),
        ("status=false_positive", ["D"]),
        ("status=triaged,false_positive", ["D", "C"]),
        ("team=payments&image=registry.example.com/payments/worker", ["B"]),
        ("kind=runtime", ["C"]),
        ("source=grype", ["B"]),
        ("stream=runtime", ["C"]),
        ("severity=critical,high", ["A", "B"]),
        ("sla=overdue", ["A"]),
        ("sla=due_soon", ["B"]),
        ("sla=on_track", ["C"]),
        ("fix=yes", ["A"]),
        ("fix=no", ["B", "C"]),
        ("kev=yes", ["A"]),
        ("epss_min=0.5", ["A"]),
        ("exposed=yes", ["A"]),
        ("assignee=me", ["A"]),
        ("assignee=none", ["B", "C"]),
        ("assignee=chris", ["A"]),
        ("q=zlib", ["B"]),
        ("q=shell", ["C"]),
        ("q=cve-2021", ["A"]),
        ("seen_days=7", ["A", "B"]),
        ("sort=due", ["A", "B", "C"]),
        ("sort=first_seen", ["B", "A", "C"]),
        ("sort=severity&status=", ["A", "B", "D", "C"]),
    ],
)
def test_each_filter_and_sort_in_the_url(client, findings, query, expected) -> None:
    response = client.get(f"/findings/?{query}")

    assert titles(response) == expected


def test_new_since_a_moment(client, findings) -> None:
    since = (timezone.now() - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")

    assert titles(client.get(f"/findings/?since={since}")) == ["B"]


def test_unknown_filter_values_are_ignored_not_errors(client, findings) -> None:
    response = client.get("/findings/?severity=urgent&sla=soonish&epss_min=2&sort=random&cursor=garbage")

    assert response.status_code == 200
    assert titles(response) == ["A", "B", "C"]


def test_filters_are_kept_in_the_next_page_link_and_the_export_link(client, team) -> None:
    FindingFactory.create_batch(51, team=team, severity="high", risk_score=10)

    response = client.get("/findings/?severity=high&kev=no")

    content = response.content.decode()
    cursor = response.context["page"].next_cursor
    assert f'href="/findings/?severity=high&amp;status=active&amp;kev=no&amp;cursor={cursor}"' in content
    assert 'href="/findings/export.csv?severity=high&amp;status=active&amp;kev=no"' in content


@pytest.mark.parametrize("sort", ["risk", "severity", "due", "first_seen", "last_seen"])
def test_keyset_pages_walk_every_finding_once_in_order_even_with_ties(team, champion, sort) -> None:
    today = timezone.localdate()
    now = timezone.now()
    for index in range(11):
        FindingFactory(
            team=team,
            risk_score=50 if index % 3 else 70,
            severity=["critical", "high", "low"][index % 3],
            due_date=None if index % 4 == 0 else today + dt.timedelta(days=index % 5),
            first_seen=now - dt.timedelta(hours=index % 2),
            last_seen=now - dt.timedelta(hours=index % 3),
        )
    filters = FindingFilters(sort=sort)
    expected = list(finding_list(user=champion, filters=filters).values_list("id", flat=True))

    first = queue.queue_page(user=champion, filters=filters, page_size=4)
    second = queue.queue_page(user=champion, filters=filters, cursor=first.next_cursor, page_size=4)
    third = queue.queue_page(user=champion, filters=filters, cursor=second.next_cursor, page_size=4)

    walked = [f.pk for page in (first, second, third) for f in page.findings]
    assert walked == expected
    assert len(walked) == 11
    assert third.next_cursor == ""


def test_the_count_stops_at_the_cap(team, champion) -> None:
    FindingFactory.create_batch(5, team=team)

    assert queue.capped_count(finding_list(user=champion, filters=FindingFilters()), cap=3) == (3, True)
    assert queue.capped_count(finding_list(user=champion, filters=FindingFilters()), cap=5) == (5, False)


def test_the_queue_page_query_count_is_pinned(client, team, findings, django_assert_num_queries) -> None:
    FindingFactory.create_batch(60, team=team)

    with django_assert_num_queries(10):  # the page's tickets: one query
        response = client.get("/findings/?sort=severity")

    assert len(response.context["page"].findings) == 50


def test_csv_export_neutralises_spreadsheet_formulas(client, team) -> None:
    FindingFactory(team=team, title='=HYPERLINK("http://evil.example","click")', package_name="+cmd|' /C calc'!A0", rule_id="@SUM(1+1)")
    FindingFactory(team=team, title="-2+3", package_name="\tleading-tab", rule_id="\rcarriage")

    response = client.get("/findings/export.csv?status=active")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert rows[0][:6] == ["id", "status", "severity", "risk_score", "rule_id", "title"]
    cells = sorted((row[4], row[5], row[11]) for row in rows[1:])
    assert cells == [
        ("'\rcarriage", "'-2+3", "'\tleading-tab"),
        ("'@SUM(1+1)", '\'=HYPERLINK("http://evil.example","click")', "'+cmd|' /C calc'!A0"),
    ]


def test_csv_export_follows_the_filters_and_the_access_rule(client, findings) -> None:
    response = client.get("/findings/export.csv?status=&sort=risk")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[5] for row in rows[1:]] == ["A", "B", "D", "C"]
    assert rows[1][18] == "yes"
    assert rows[1][22] == "overdue"


def test_bulk_action_on_a_selection_answers_json_for_the_script(client, findings) -> None:
    ids = [findings["A"].pk, findings["B"].pk, findings["E"].pk]

    response = client.post(
        "/findings/bulk/",
        {"ids": ids, "action": "false_positive", "reason": "scanner noise", "scope": "selected"},
        HTTP_ACCEPT="application/json",
    )

    body = response.json()
    assert response.status_code == 200
    assert sorted(body["changed"]) == sorted([findings["A"].pk, findings["B"].pk])
    assert body["message"] == "2 findings now false positive."
    assert body["undo_url"] == f"/findings/bulk/{body['batch']}/undo/"
    assert Finding.objects.get(pk=findings["E"].pk).status == Status.OPEN


def test_bulk_action_on_everything_matching_the_filter_then_undo(client, findings) -> None:
    response = client.post(
        "/findings/bulk/",
        {
            "scope": "all",
            "query": "severity=critical,high",
            "action": "status",
            "status": "in_progress",
            "reason": "",
            "next": "/findings/?severity=critical,high",
        },
    )
    changed = list(Finding.objects.filter(status=Status.IN_PROGRESS).values_list("title", flat=True).order_by("title"))
    flash = client.get("/findings/").context["last_bulk"]
    undo = client.post(flash["undo_url"], {"next": "/findings/"})

    assert response.status_code == 302
    assert response["Location"] == "/findings/?severity=critical,high"
    assert changed == ["A", "B"]
    assert flash["message"] == "2 findings now in progress."
    assert undo.status_code == 302
    assert list(Finding.objects.filter(title__in=["A", "B"]).values_list("status", flat=True)) == ["open", "open"]


def test_bulk_accept_risk_needs_a_reason(client, findings) -> None:
    response = client.post(
        "/findings/bulk/", {"ids": [findings["A"].pk], "action": "accept_risk", "reason": ""}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "accepting risk needs a reason: say why, for the people who read the history later"


def test_the_finding_page_shows_what_where_how_to_fix_and_the_history(client, team, champion) -> None:
    finding = FindingFactory(
        team=team,
        rule_id="CVE-2021-44228",
        package_name="log4j-core",
        package_version="2.14.1",
        fixed_version="2.17.1",
        references=["https://nvd.nist.gov/vuln/detail/CVE-2021-44228"],
        risk_parts={"severity": 55.0, "kev": 15.0},
        risk_score=70.0,
    )
    client.post(f"/findings/{finding.pk}/update/", {"status": "triaged", "reason": "confirmed in the API image"})
    client.post(f"/findings/{finding.pk}/update/", {"comment": "Upgrade planned for Thursday."})

    content = client.get(f"/findings/{finding.pk}/").content.decode()

    assert "Upgrade log4j-core from 2.14.1 to 2.17.1" in content
    assert 'title="severity / CVSS 55 + in CISA KEV 15 = 70"' in content
    assert "open → triaged</span>\n  by chris: <q>confirmed in the API image</q>" in content
    assert "<strong>chris</strong>: Upgrade planned for Thursday." in content
    assert "https://nvd.nist.gov/vuln/detail/CVE-2021-44228" in content


def test_the_finding_page_query_count_is_pinned(client, team, champion, django_assert_num_queries) -> None:
    finding = FindingFactory(team=team, rule_id="CVE-2021-44228")
    for day in range(5):
        FindingEventFactory(
            finding=finding,
            type="status",
            from_status="open",
            to_status="triaged",
            actor=champion,
            created_at=timezone.now() - dt.timedelta(days=day),
        )

    # Its tickets and its team's tracker; where it runs (its versions, the live sightings of its image); the audit link
    with django_assert_num_queries(19):
        response = client.get(f"/findings/{finding.pk}/")

    assert response.status_code == 200


def test_a_finding_of_another_team_is_404(client, findings) -> None:
    assert client.get(f"/findings/{findings['E'].pk}/").status_code == 404
    assert client.post(f"/findings/{findings['E'].pk}/update/", {"status": "triaged"}).status_code == 404


def test_undo_from_the_history(client, findings) -> None:
    client.post(f"/findings/{findings['A'].pk}/update/", {"status": "false_positive", "reason": "vendored"})
    event = FindingEvent.objects.get(finding=findings["A"])

    response = client.post(f"/findings/{findings['A'].pk}/events/{event.pk}/undo/")

    assert response.status_code == 302
    assert Finding.objects.get(pk=findings["A"].pk).status == Status.OPEN
    assert FindingEvent.objects.filter(finding=findings["A"]).latest("id").type == "undone"
