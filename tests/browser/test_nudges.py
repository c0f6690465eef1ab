"""A champion opens a nudge's module from their home page, then marks the nudge done and shared."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dashboard.models import Nudge
from tests.browser.conftest import login
from tests.factories import FindingFactory, MembershipFactory, NudgeFactory, TeamFactory, TopicFactory, TrainingModuleFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_champion_opens_and_completes_a_nudge(live_server, transactional_db, page) -> None:
    team = TeamFactory(slug="payments", name="Payments")
    champion = UserFactory(username="champion")
    MembershipFactory(user=champion, team=team, role="champion")
    topic = TopicFactory(slug="root-containers", name="Containers running as root", summary="Run as a user, not root.")
    # The module points back at this server: the test never leaves the machine.
    module = TrainingModuleFactory(title="Configure a Security Context", url=f"{live_server.url}/healthz", topics=[topic])
    nudge = NudgeFactory(
        team=team, topic=topic, module=module, reason="“Containers running as root” came up 3 times.", created_at=timezone.now()
    )
    nudge.findings.set([FindingFactory(team=team, kind="misconfiguration", rule_id="KSV012", package_name="")])

    # Vigil serves no favicon; Chromium asks for one per tab (the popup too).
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    login(page, live_server.url, "champion", "correct-horse-battery")
    card = page.locator(f"#nudge-{nudge.pk}")

    assert page.url == f"{live_server.url}/"
    assert "Why you see this: “Containers running as root” came up 3 times." in card.inner_text()
    with page.expect_popup() as popup:
        card.locator("a.nudge-open").click()
    assert popup.value.url == f"{live_server.url}/healthz"
    card.locator(".nudge-state", has_text="Opened").wait_for(timeout=10000)
    card.locator("input[name=shared]").check()
    card.locator("form.nudge-done button").click()
    page.wait_for_load_state("networkidle")

    nudge.refresh_from_db()
    assert page.url == f"{live_server.url}/"
    assert "“Containers running as root” is marked done" in page.inner_text("main")
    assert page.locator(f"#nudge-{nudge.pk}").count() == 0
    assert (nudge.state, nudge.shared_with_team, nudge.opened_at is not None) == ("done", True, True)
    assert Nudge.objects.filter(state="done").count() == 1
    assert page.console_errors == []
