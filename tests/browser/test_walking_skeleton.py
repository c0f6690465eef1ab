"""A champion logs in, lands on the team page, sees findings and a rendered Plotly chart, and no other team."""

from __future__ import annotations

import pytest

from dashboard.models import ACTIVE_STATUSES, Finding
from dashboard.services.demo import DEMO_PASSWORD, demo_load
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_demo_champion_sees_team_findings_and_a_rendered_chart(live_server, transactional_db, page) -> None:
    demo_load()
    open_for_team = Finding.objects.filter(team__slug="payments", status__in=ACTIVE_STATUSES).count()

    login(page, live_server.url, "champion", DEMO_PASSWORD)

    assert page.url == f"{live_server.url}/"  # the champion's home, then the team page
    assert page.inner_text("h1") == "Today for Payments"
    page.goto(f"{live_server.url}/teams/payments/")
    assert page.inner_text("h1") == "Payments"
    page.wait_for_selector("#trend-chart .main-svg", timeout=15000)
    assert page.locator("#trend-chart .scatterlayer .trace").count() >= 2
    assert page.locator("table.findings tbody tr").count() == min(20, open_for_team) > 0
    page.click("h2 a.more[href^='/findings/']")
    page.wait_for_load_state("networkidle")
    assert "team=payments" in page.url
    assert page.locator("table.findings tbody tr").count() > 0
    assert page.console_errors == []
    assert page.goto(f"{live_server.url}/teams/storefront/").status == 404
