"""The demo manager opens the base-image roll-up and the champion load, follows a link to the queue: no console error."""

from __future__ import annotations

import pytest

from dashboard.services.demo import DEMO_PASSWORD, demo_load
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_demo_manager_opens_base_images_and_champion_load(live_server, transactional_db, page) -> None:
    demo_load()
    login(page, live_server.url, "manager", DEMO_PASSWORD)

    page.click("nav a:has-text('Base images')")
    page.wait_for_load_state("networkidle")
    sections = page.locator("section.base-image")
    alpine = sections.filter(has_text="alpine 3.9.4")

    assert page.inner_text("h1") == "Base images"
    assert sections.count() == 2
    assert "fixes 5 findings in 3 images of 2 teams" in alpine.inner_text()  # the demo triaged or closed the others
    assert "debian 10.4" in sections.nth(1).inner_text()
    alpine.locator("tbody tr", has_text="payments/billing").locator("a").click()
    page.wait_for_load_state("networkidle")
    assert "base_layer=sha256" in page.url
    assert page.locator("table.findings tbody tr").count() == 2  # the Payments row of the roll-up

    page.click("nav a:has-text('Champions')")
    page.wait_for_load_state("networkidle")
    text = page.inner_text("main")
    assert page.inner_text("h1") == "Champion load"
    assert "storefront-champion" in text and "champion" in text
    assert page.locator("table.champion-load").nth(1).inner_text().count("Platform") == 1
    assert page.console_errors == []
