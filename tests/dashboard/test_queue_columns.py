"""The queue's rows explain themselves: package paths, age and days left, sortable headers, the risk
score's surprise, "assign to me", rows updated after a bulk decision, and no bulk form for people who
may not triage."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import Finding, Role, Status
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


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


def row(page: str, finding: Finding) -> str:
    return re.search(rf'<tr data-id="{finding.pk}">.*?</tr>', page, re.S).group(0)


def test_rows_that_differ_only_in_package_path_show_the_path(client, team) -> None:
    common = {"team": team, "rule_id": "CVE-2021-33574", "package_name": "libc6", "package_version": "2.31-13"}
    one = FindingFactory(**common, package_path="usr/lib/x86_64-linux-gnu/libc.so.6")
    other = FindingFactory(**common, package_path="opt/app/vendor/libc.so.6")

    page = client.get("/findings/").content.decode()

    assert "usr/lib/x86_64-linux-gnu/libc.so.6" in row(page, one) and "opt/app/vendor/libc.so.6" in row(page, other)


def test_rows_show_age_and_days_left(client, team) -> None:
    today = timezone.localdate()
    late = FindingFactory(team=team, first_seen=timezone.now() - dt.timedelta(days=12), due_date=today - dt.timedelta(days=3))

    cells = row(client.get("/findings/").content.decode(), late)

    assert re.search(r'class="num col-age">12<', cells) and re.search(r'class="num col-days-left">-3<', cells)


def test_column_headers_sort_the_queue_keeping_the_filters(client, team) -> None:
    FindingFactory(team=team)

    page = client.get("/findings/?severity=high&sort=due").content.decode()

    headers = dict(re.findall(r'<a class="sort" href="([^"]+)"[^>]*>([^<]+)</a>', page))
    assert {text: href.replace("&amp;", "&") for href, text in headers.items()} == {
        "Severity": "/findings/?severity=high&status=active&sort=severity",
        "Age": "/findings/?severity=high&status=active&sort=first_seen",
        "Due": "/findings/?severity=high&status=active&sort=due",
        "Risk": "/findings/?severity=high&status=active&sort=risk",
    }
    assert re.search(r'<th aria-sort="ascending"><a class="sort" href="[^"]*sort=due"', page)


def test_a_low_scored_as_cvss_10_says_why_it_ranks_above_criticals(client, team) -> None:
    low = FindingFactory(team=team, severity="low", cvss=10.0, risk_score=60, risk_parts={"severity": 55.0, "fix_available": 5.0})

    cells = row(client.get("/findings/").content.decode(), low)

    assert "CVSS 10 (scanner said low)" in cells and 'title="severity / CVSS 55 + fix available 5 = 60"' in cells


def test_assign_to_me_on_a_row_assigns_only_that_finding_and_answers_its_new_state(client, team, champion) -> None:
    mine, other = FindingFactory(team=team), FindingFactory(team=team)

    body = client.post(
        "/findings/bulk/", {"assign_me": str(mine.pk), "ids": [other.pk], "action": "status"}, HTTP_ACCEPT="application/json"
    ).json()

    assert body["changed"] == [mine.pk] and body["rows"] == {str(mine.pk): {"status": "open", "assignee": "chris"}}
    assert Finding.objects.get(pk=other.pk).assignee_id is None


def test_assign_to_me_in_bulk_assigns_the_selection(client, team, champion) -> None:
    picked = FindingFactory.create_batch(3, team=team)

    client.post("/findings/bulk/", {"assign_me": "selected", "scope": "selected", "ids": [f.pk for f in picked], "action": "status"})

    assert set(Finding.objects.filter(assignee=champion).values_list("pk", flat=True)) == {f.pk for f in picked}


def test_a_bulk_decision_answers_the_rows_new_status_for_the_page(client, team) -> None:
    picked = FindingFactory.create_batch(2, team=team)

    body = client.post(
        "/findings/bulk/",
        {"ids": [f.pk for f in picked], "scope": "selected", "action": "status", "status": "in_progress", "reason": "on it"},
        HTTP_ACCEPT="application/json",
    ).json()

    assert body["rows"] == {str(f.pk): {"status": Status.IN_PROGRESS, "assignee": ""} for f in picked}


def test_a_manager_without_the_triage_grant_sees_no_bulk_form_nor_row_actions(team) -> None:
    manager = MembershipFactory(team=team, role=Role.MANAGER, can_triage=False).user
    FindingFactory(team=team)
    client = Client()
    client.force_login(manager)

    page = client.get("/findings/").content.decode()

    assert 'id="bulk-form"' not in page and "assign to me" not in page and 'name="ids"' not in page
    assert '<tr data-id="' in page


def test_a_manager_with_the_triage_grant_gets_the_bulk_form(team) -> None:
    manager = MembershipFactory(team=team, role=Role.MANAGER, can_triage=True).user
    FindingFactory(team=team)
    client = Client()
    client.force_login(manager)

    page = client.get("/findings/").content.decode()

    assert 'id="bulk-form"' in page and "assign to me" in page
