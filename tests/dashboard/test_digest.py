"""The weekly digest: one email per champion (Django's locmem backend) and one POST per team webhook
(a local HTTP receiver started by the test), each sent once per week."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from dashboard.models import NudgeDigest, NudgeState
from dashboard.services.digest import digest_send_weekly
from tests.factories import (
    MembershipFactory,
    NudgeFactory,
    TeamFactory,
    TeamWebhookFactory,
    TopicFactory,
    TrainingModuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        Receiver.received.append({"body": json.loads(self.rfile.read(length)), "type": self.headers.get("Content-Type")})
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    Receiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/team"
    server.shutdown()
    server.server_close()


@pytest.fixture
def team(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    team = TeamFactory(slug="payments", name="Payments")
    MembershipFactory(user=UserFactory(username="ana", email="ana@example.com"), team=team, role="champion")
    MembershipFactory(user=UserFactory(username="bo", email="bo@example.com"), team=team, role="member")
    topic = TopicFactory(slug="root-containers", name="Containers running as root")
    module = TrainingModuleFactory(
        title="Configure a Security Context",
        url="https://kubernetes.io/docs/tasks/configure-pod-container/security-context/",
        minutes=20,
        provider="Kubernetes documentation",
        topics=[topic],
    )
    NudgeFactory(team=team, topic=topic, module=module, reason="It came up 3 times.", created_at=MONDAY - dt.timedelta(days=2), pk=41)
    NudgeFactory(team=team, state=NudgeState.DONE, created_at=MONDAY - dt.timedelta(days=30))
    return team


def test_each_champion_gets_one_email_a_week_listing_the_teams_nudges(team) -> None:
    first = digest_send_weekly(now=MONDAY)
    again = digest_send_weekly(now=MONDAY + dt.timedelta(hours=5))
    next_week = digest_send_weekly(now=MONDAY + dt.timedelta(days=7))

    assert (first.emails, again.emails, next_week.emails) == (1, 0, 1)
    message = mail.outbox[0]
    assert (message.to, message.subject) == (["ana@example.com"], "Vigil: 1 learning nudge for Payments this week")
    assert "• Containers running as root (New)\n  Why you see this: It came up 3 times.\n" in message.body
    assert (
        "Configure a Security Context, Kubernetes documentation, about 20 min: https://kubernetes.io/docs/tasks/configure-pod-container/security-context/"
        in message.body
    )
    assert "https://vigil.example.com/nudges/41/" in message.body
    assert list(NudgeDigest.objects.values_list("recipient", "week")) == [
        ("ana@example.com", dt.date(2026, 11, 30)),
        ("ana@example.com", dt.date(2026, 11, 23)),
    ]


def test_nothing_is_sent_before_monday_8_or_without_nudges(team) -> None:
    MembershipFactory(user=UserFactory(username="cy", email="cy@example.com"), team=TeamFactory(slug="quiet"), role="champion")

    early = digest_send_weekly(now=MONDAY.replace(hour=7))
    due = digest_send_weekly(now=MONDAY.replace(hour=8))

    assert (early.emails, due.emails) == (0, 1)
    assert [message.to for message in mail.outbox] == [["ana@example.com"]]


def test_the_team_webhook_gets_the_digest_as_slack_compatible_json(team, receiver) -> None:
    TeamWebhookFactory(team=team, url=receiver)

    first = digest_send_weekly(now=MONDAY)
    again = digest_send_weekly(now=MONDAY + dt.timedelta(hours=1))

    assert (first.webhooks, again.webhooks) == (1, 0)
    assert len(Receiver.received) == 1
    posted = Receiver.received[0]
    assert posted["type"] == "application/json"
    assert set(posted["body"]) == {"text"}
    assert posted["body"]["text"].startswith("Hello from Vigil! This week's learning nudges for Payments:")


def test_a_failing_webhook_is_retried_on_the_next_run(team, receiver) -> None:
    TeamWebhookFactory(team=team, url=receiver)
    Receiver.status = 500

    failed = digest_send_weekly(now=MONDAY)
    Receiver.status = 204
    retried = digest_send_weekly(now=MONDAY + dt.timedelta(hours=1))

    assert (failed.webhooks, failed.failures, retried.webhooks) == (0, 1, 1)
    assert len(Receiver.received) == 2
    assert NudgeDigest.objects.filter(channel="webhook").count() == 1
