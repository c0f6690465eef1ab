"""Tickets on pages: the finding page and the queue show them; the settings page sets the tracker."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import Role, Status, TrackerConfig, TrackerKind
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, TicketFactory, TicketLinkFactory, TrackerConfigFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def champion(team) -> Client:
    client = Client()
    client.force_login(MembershipFactory(team=team, role=Role.CHAMPION).user)
    return client


def test_the_finding_page_links_its_ticket_and_offers_one_for_the_upgrade(team, champion: Client) -> None:
    tracker = TrackerConfigFactory(team=team)
    finding = FindingFactory(team=team, fixed_version="3.0.13", status=Status.IN_PROGRESS)
    TicketLinkFactory(ticket=TicketFactory(tracker=tracker, external_id="42", url="https://github.com/acme/payments/issues/42"),
                      finding=finding)  # fmt: skip

    page = champion.get(f"/findings/{finding.pk}/").content.decode()

    assert '<a href="https://github.com/acme/payments/issues/42" rel="noopener noreferrer" target="_blank">github 42</a>' in page
    assert "Create ticket for the upgrade to 3.0.13" in page


def test_the_queue_shows_a_closed_ticket_that_a_scan_contradicted(team, champion: Client) -> None:
    link = TicketLinkFactory(ticket=TicketFactory(tracker=TrackerConfigFactory(team=team), state="closed", url="https://t/1"),
                             finding=FindingFactory(team=team), seen_after_close=True)  # fmt: skip

    page = champion.get("/findings/").content.decode()

    assert f'<tr data-id="{link.finding.pk}">' in page
    assert "closed, still seen" in page


def test_the_settings_page_saves_the_tracker_and_never_shows_the_token_again(champion: Client, settings) -> None:
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    form = {"kind": "gitlab", "base_url": "https://gitlab.example.com/", "project": "acme/payments", "secret": "glpat-abcdefgh1234"}

    champion.post("/teams/payments/tracker/", form)
    page = champion.get("/teams/payments/settings/").content.decode()

    tracker = TrackerConfig.objects.get(team__slug="payments")
    assert (tracker.kind, tracker.base_url, tracker.secret) == (TrackerKind.GITLAB, "https://gitlab.example.com", "glpat-abcdefgh1234")
    assert "glpat-abcdefgh1234" not in page
    assert "kept: …1234" in page
    assert "<code>https://vigil.example.com/api/v1/trackers/payments/gitlab/webhook</code>" in page
