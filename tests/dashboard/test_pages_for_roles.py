"""Pages offer only what the person may use: the audit link for everyone who may read it, no links into
the unowned queue for champions, styled 403 and 404 pages that say why and lead back; the command line
runs quietly and the README's CI example repeats safely."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client

from dashboard.models import Role, Team
from dashboard.services.teams import user_create
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_who_may_read_the_audit_log_gets_the_link_and_a_champion_does_not() -> None:
    team = TeamFactory(slug="payments")
    manager = MembershipFactory(team=team, role=Role.MANAGER).user
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user

    managers_home = logged_in(manager).get("/").content.decode()
    champions_home = logged_in(champion).get("/").content.decode()

    assert 'href="/audit/"' in managers_home and logged_in(manager).get("/audit/").status_code == 200
    assert 'href="/audit/"' not in champions_home and logged_in(champion).get("/audit/").status_code == 403


def test_a_champion_gets_no_link_to_the_unowned_queue() -> None:
    champion = MembershipFactory(team=TeamFactory(slug="payments"), role=Role.CHAMPION).user

    page = logged_in(champion).get("/ownership/").content.decode()

    assert 'href="/ownership/unowned/"' not in page


def test_a_forbidden_page_is_styled_says_why_and_leads_back() -> None:
    champion = MembershipFactory(team=TeamFactory(slug="payments"), role=Role.CHAMPION).user

    response = logged_in(champion).get("/ownership/unowned/")

    page = response.content.decode()
    assert response.status_code == 403
    assert 'id="error-403"' in page and "Only administrators change ownership." in page
    assert '<a href="/">Back to Today</a>' in page and 'class="top"' in page  # the site's layout, not a bare page


def test_a_missing_page_is_styled_and_leads_back_while_the_api_keeps_its_json() -> None:
    client = logged_in(UserFactory())

    page = client.get("/findings/999999/")
    api = client.get("/api/v1/nothing-here/")

    assert page.status_code == 404 and 'id="error-404"' in page.content.decode() and "Back to Today" in page.content.decode()
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_an_administrator_created_as_superuser_is_accepted_by_djangos_admin() -> None:
    admin = user_create(username="admin", password="x-" * 8, is_staff=True, is_superuser=True)

    page = logged_in(admin).get("/admin/").content.decode()

    assert "permission to view or edit anything" not in page and "/admin/dashboard/team/" in page


def test_create_team_run_twice_as_in_the_readme_succeeds_and_changes_nothing() -> None:
    out = StringIO()
    call_command("create_team", "payments", "--name", "Payments", stdout=out)
    call_command("create_team", "payments", "--name", "Payments", stdout=out)

    assert out.getvalue().splitlines() == ["created team payments (Payments)", "team payments already exists (Payments)"]
    assert Team.objects.filter(slug="payments").count() == 1


def test_create_team_refuses_to_rename_an_existing_team() -> None:
    TeamFactory(slug="payments", name="Payments")

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_team", "payments", "--name", "Billing", stdout=StringIO())


def test_a_management_command_prints_no_line_of_the_login_throttling_library() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=Path(settings.BASE_DIR), capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "AXES" not in done.stderr + done.stdout
