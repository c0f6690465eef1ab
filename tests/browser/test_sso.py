"""A champion signs in with the identity provider in Chromium and lands on their team's Today page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.services.sso_rules import parse_rules
from tests.factories import TeamFactory
from tests.sso_provider.harness import PASSWORD, Provider, running_provider

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def provider(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    people = {"grace": {"email": "grace@example.com", "groups": ["payments-champions"]}}
    with running_provider(tmp_path_factory.mktemp("provider"), f"{live_server.url}/oidc/callback/", people) as running:
        yield running


def test_sign_in_with_the_provider_in_a_browser(
    live_server: Any, transactional_db: Any, settings: Any, provider: Provider, page: Any
) -> None:
    for name, value in provider.vigil_settings().items():
        setattr(settings, name, value)
    settings.VIGIL_SSO_RULES = parse_rules(json.dumps([{"group": "payments-champions", "team": "payments", "role": "champion"}]))
    settings.VIGIL_LOCAL_LOGIN = False
    TeamFactory(slug="payments", name="Payments")

    page.goto(f"{live_server.url}/login/")
    assert page.locator("input[name=password]").count() == 0
    page.click("text=Sign in with Test IdP")
    page.fill("input[name=username]", "grace")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    assert page.inner_text("h1") == "Today for Payments"
    assert page.inner_text("form.logout span") == "grace"
    # The test provider's own pages have no favicon (a 404 in the console): Vigil's page is judged on its own.
    page.console_errors.clear()
    page.reload()
    assert page.console_errors == []
