"""A manager changes the posture period, sorts the team comparison and clicks through to the queue; charts render cleanly."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import Role, Status
from dashboard.services.snapshots import snapshots_backfill
from tests.browser.conftest import login
from tests.factories import FindingEventFactory, FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _findings(team, *, critical: int, fixed: int) -> None:
    now = timezone.now()
    for n in range(critical):
        opened = now - dt.timedelta(days=20 + n)
        finding = FindingFactory(team=team, severity="critical", first_seen=opened, due_date=(opened + dt.timedelta(days=7)).date())
    for n in range(fixed):
        opened, closed = now - dt.timedelta(days=40 + n), now - dt.timedelta(days=10 + n)
        finding = FindingFactory(team=team, severity="high", status=Status.FIXED, first_seen=opened, fixed_at=closed)
        FindingEventFactory(finding=finding, type="fixed", from_status=Status.OPEN, to_status=Status.FIXED, created_at=closed)


def test_a_manager_changes_the_period_sorts_teams_and_opens_the_queue(live_server, transactional_db, page) -> None:
    payments, storefront = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="storefront", name="Storefront")
    _findings(payments, critical=1, fixed=2)
    _findings(storefront, critical=3, fixed=1)
    manager = UserFactory(username="meg")
    for team in (payments, storefront):
        MembershipFactory(user=manager, team=team, role=Role.MANAGER)
    snapshots_backfill(days=120)

    login(page, live_server.url, "meg", "correct-horse-battery")
    page.goto(f"{live_server.url}/posture/")
    for chart in ("open-chart", "flow-chart", "ttf-chart", "sla-chart", "age-chart"):
        page.wait_for_selector(f"#{chart} .main-svg", timeout=15000)
    assert page.locator(".headline").count() == 4
    page.click("a[data-days='90']")
    page.wait_for_load_state("networkidle")
    assert "days=90" in page.url
    assert "(90 days)" in page.inner_text("form.period")
    page.wait_for_selector("#open-chart .main-svg", timeout=15000)

    page.click("nav.subnav >> text=Team comparison")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("#heatmap-chart .main-svg", timeout=15000)
    assert page.locator("#team-comparison tbody tr").first.get_attribute("data-team") == "payments"  # by name
    page.click("#team-comparison th >> text=Open critical")
    assert page.locator("#team-comparison th").nth(1).get_attribute("aria-sort") == "ascending"
    page.click("#team-comparison th >> text=Open critical")
    assert page.locator("#team-comparison tbody tr").first.get_attribute("data-team") == "storefront"  # most criticals first

    page.click("#team-comparison tbody tr:first-child td:nth-child(2) a")
    page.wait_for_load_state("networkidle")
    assert "/findings/?team=storefront&status=active&severity=critical" in page.url
    assert page.locator("table.findings tbody tr").count() == 3
    assert page.console_errors == []


def test_shift_left_draws_both_charts_and_sorts_its_table(live_server, transactional_db, page) -> None:
    payments = TeamFactory(slug="payments", name="Payments")
    _findings(payments, critical=3, fixed=0)
    now = timezone.now()
    for stream in ("runtime", "admission"):
        opened = now - dt.timedelta(days=5)
        finding = FindingFactory(team=payments, kind="secret", stream=stream, rule_id="aws-access-key-id", first_seen=opened)
        FindingEventFactory(finding=finding, created_at=opened)
    manager = UserFactory(username="meg")
    MembershipFactory(user=manager, team=payments, role=Role.MANAGER)
    snapshots_backfill(days=60)

    login(page, live_server.url, "meg", "correct-horse-battery")
    page.goto(f"{live_server.url}/posture/shift-left/?days=90")
    for chart in ("shares-chart", "trend-chart"):
        page.wait_for_selector(f"#{chart} .main-svg", timeout=15000)
    assert page.locator("#shares-chart .bars .point").count() > 0
    labels = page.locator("#shift-left tbody tr td:nth-child(2)")
    assert labels.all_inner_texts() == ["Vulnerable application dependencies", "Secrets in images"]  # most findings first
    page.click("#shift-left th >> text=Findings")
    assert labels.all_inner_texts() == ["Secrets in images", "Vulnerable application dependencies"]
    assert page.console_errors == []
