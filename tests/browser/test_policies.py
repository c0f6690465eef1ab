"""A champion turns the team's policy to enforce in the browser, and the gate then fails the image."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from dashboard.models import EnforcementPolicy
from dashboard.services.tokens import token_create
from tests.browser.conftest import login
from tests.factories import FindingFactory, ImageFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_a_champion_edits_the_policy_and_sees_the_new_version(live_server, transactional_db, page) -> None:
    team = TeamFactory(slug="payments", name="Payments")
    MembershipFactory(user=UserFactory(username="champion"), team=team, role="champion")
    image = ImageFactory(repository="payments/api", team=team)
    FindingFactory(image=image, team=team, severity="critical", fixed_version="3.0.8")
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    login(page, live_server.url, "champion", "correct-horse-battery")

    page.click("nav >> text=Policies")
    page.click("tr:has-text('Payments') >> text=edit")
    assert "has no policy of its own yet" in page.inner_text("main")
    page.select_option("select[name=mode]", "enforce")
    page.fill("textarea[name=namespace_modes]", "payments-dev=audit")
    page.check("input[name=secrets]")
    page.fill("input[name=reason]", "go-live on Monday")
    page.click("text=Save policy")
    page.wait_for_load_state("networkidle")

    assert "Saved: the policy is now at version 1." in page.inner_text("main")
    history = page.inner_text("table.versions")
    assert "v1" in history and "go-live on Monday" in history and "mode, namespace_modes, secrets" in history
    assert page.locator("select[name=mode]").input_value() == "enforce"
    policy = EnforcementPolicy.objects.get(team=team)
    assert (policy.mode, policy.namespace_modes, policy.secrets, policy.version) == ("enforce", {"payments-dev": "audit"}, True, 1)

    _, secret = token_create(team=team, name="payments CI", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/gate/", {"image": "registry.example.com/payments/api"}).json()["decision"] == "fail"
    assert page.console_errors == []
