"""A team's notification channels: edited by its champions, administrators and admin tokens on the settings page
and through the API, audited, with the webhook URL never shown back in full."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, NotificationChannel, NotificationEvent, Role
from dashboard.services.notification_channels import channel_create
from dashboard.services.tokens import token_create
from tests.factories import MembershipFactory, NotificationChannelFactory, NotificationFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_URL = "https://hooks.slack.com/services/T0001/B0002/very-secret-token-XYZW"
URL = "/api/v1/teams/payments/notification-channels/"


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token(team, scope: str) -> APIClient:
    _, secret = token_create(team=team, name=f"{team.slug} {scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_champion_adds_a_webhook_channel_on_the_settings_page_and_sees_it_masked(team) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user
    client = logged_in(champion)

    added = client.post(
        "/teams/payments/notifications/",
        {"kind": "webhook", "name": "#payments-sec", "url": SECRET_URL, "events": ["new_critical", "runtime_alert"]},
    )
    page = client.get("/teams/payments/settings/").content.decode()

    channel = NotificationChannel.objects.get(team=team)
    record = AuditEvent.objects.get(action=AuditEvent.Action.NOTIFICATIONS_CHANGED)
    assert added.status_code == 302
    assert (channel.url, channel.events) == (SECRET_URL, ["new_critical", "runtime_alert"])
    assert "#payments-sec" in page and "https://hooks.slack.com/…XYZW" in page
    assert "very-secret-token" not in page
    assert "very-secret-token" not in str(record.details)
    assert record.actor_id == champion.pk


def test_a_member_may_not_add_a_channel(team) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    response = logged_in(member).post("/teams/payments/notifications/", {"kind": "email", "name": "mail", "events": ["new_critical"]})

    with pytest.raises(ApplicationError, match="only administrators and champions"):
        channel_create(team=team, by=member, kind="email", name="mail")
    assert response.status_code == 403
    assert NotificationChannel.objects.count() == 0


def test_switching_a_channel_off_and_changing_its_rules_keeps_the_secret(team) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user
    channel = NotificationChannelFactory(team=team, url=SECRET_URL)

    logged_in(champion).post(f"/teams/payments/notifications/{channel.pk}/", {"events": ["report_problem"], "url": ""})

    channel.refresh_from_db()
    assert (channel.active, channel.events, channel.url) == (False, ["report_problem"], SECRET_URL)


def test_the_settings_page_lists_what_was_sent_lately(team) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user
    NotificationFactory(channel=NotificationChannelFactory(team=team), subject="Vigil: 3 new critical findings for Payments")

    page = logged_in(champion).get("/teams/payments/settings/").content.decode()

    assert "Vigil: 3 new critical findings for Payments" in page


def test_an_admin_token_adds_an_email_channel_through_the_api(team) -> None:
    response = token(team, "admin").post(
        URL, {"kind": "email", "name": "champions", "roles": ["champion"], "events": ["sla_tomorrow"]}, format="json"
    )

    assert response.status_code == 201
    assert response.json() == {
        "id": NotificationChannel.objects.get().pk, "team": "payments", "kind": "email", "name": "champions", "url": "",
        "roles": ["champion"], "events": ["sla_tomorrow"], "active": True,
    }  # fmt: skip


def test_the_api_lists_channels_with_the_url_masked(team) -> None:
    NotificationChannelFactory(team=team, url=SECRET_URL, name="chat")

    body = token(team, "read").get(URL).json()

    assert [(c["name"], c["url"]) for c in body["results"]] == [("chat", "https://hooks.slack.com/…XYZW")]


def test_a_read_token_may_not_add_and_bad_values_are_a_400(team) -> None:
    refused = token(team, "read").post(URL, {"kind": "webhook", "name": "x", "url": SECRET_URL}, format="json")
    admin = token(team, "admin")
    unknown_event = admin.post(URL, {"kind": "webhook", "name": "x", "url": SECRET_URL, "events": ["everything"]}, format="json")
    no_url = admin.post(URL, {"kind": "webhook", "name": "x", "events": ["new_critical"]}, format="json")
    ftp = admin.post(URL, {"kind": "webhook", "name": "x", "url": "ftp://example.com/x"}, format="json")

    assert refused.status_code == 403
    assert (unknown_event.status_code, unknown_event.json()["error"]["code"]) == (400, "invalid_events")
    assert (no_url.status_code, ftp.status_code) == (400, 400)
    assert NotificationChannel.objects.count() == 0


def test_patch_and_delete_through_the_api_are_audited(team) -> None:
    channel = NotificationChannelFactory(team=team, url=SECRET_URL)
    admin = token(team, "admin")

    patched = admin.patch(f"{URL}{channel.pk}/", {"events": [NotificationEvent.NEW_CRITICAL], "active": False}, format="json")
    deleted = admin.delete(f"{URL}{channel.pk}/")

    assert (patched.json()["events"], patched.json()["active"]) == (["new_critical"], False)
    assert deleted.status_code == 204
    assert NotificationChannel.objects.count() == 0
    assert AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATIONS_CHANGED).count() == 2


def test_another_teams_admin_token_gets_404(team) -> None:
    NotificationChannelFactory(team=team)

    response = token(TeamFactory(slug="storefront"), "admin").get(URL)

    assert response.status_code == 404


def test_staff_add_channels_for_any_team(team) -> None:
    staff = UserFactory(is_staff=True)

    channel = channel_create(team=team, by=staff, kind="email", name="everyone", events=list(NotificationEvent.values[:1]))

    assert channel.events == ["new_critical"]
