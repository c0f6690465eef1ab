"""A champion makes one ticket of two findings in the queue, in a GitLab that is a local HTTP server, and follows it."""

from __future__ import annotations

import pytest

from dashboard.models import Role, Status, TrackerKind
from tests.browser.conftest import login
from tests.dashboard.tracker_receiver import Tracker
from tests.dashboard.tracker_receiver import tracker as tracker  # the fixture: tests/browser is not under tests/dashboard
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, TrackerConfigFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_selection_becomes_one_gitlab_issue_linked_from_the_queue_and_the_finding(live_server, page, transactional_db,
                                                                                    tracker: Tracker) -> None:  # fmt: skip
    team = TeamFactory(slug="payments", name="Payments")
    MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris"))
    TrackerConfigFactory(team=team, kind=TrackerKind.GITLAB, base_url=tracker.url, project="acme/payments", secret="glpat-x")
    tracker.answer = {"iid": 7, "web_url": "https://gitlab.example.com/acme/payments/-/issues/7"}
    first, second = FindingFactory(team=team, risk_score=60), FindingFactory(team=team, risk_score=50)
    FindingFactory(team=team, risk_score=10)
    login(page, live_server.url, "chris", PASSWORD)

    page.goto(f"{live_server.url}/findings/")
    page.check(f"tr[data-id='{first.pk}'] input.select-row")
    page.check(f"tr[data-id='{second.pk}'] input.select-row")
    page.click("#bulk-ticket")
    page.wait_for_load_state("networkidle")
    queue_links = page.locator("table.queue .tickets a").all_inner_texts()
    page.goto(f"{live_server.url}/findings/{first.pk}/")

    (request,) = tracker.received
    assert request.path == "/api/v4/projects/acme%2Fpayments/issues"
    assert request.body["title"] == "2 security findings to fix"
    assert queue_links == ["gitlab 7", "gitlab 7"]
    assert page.locator("#tickets a").get_attribute("href") == "https://gitlab.example.com/acme/payments/-/issues/7"
    assert page.locator("#finding-status").inner_text() == Status.IN_PROGRESS.replace("_", " ")
    assert page.console_errors == []
