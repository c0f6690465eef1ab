"""Delivery: a webhook gets one JSON POST (a real HTTP receiver in a thread), email goes to members who may read
(Django's locmem backend); refusals are retried with backoff, a crash sends again, a busy channel waits."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

import dashboard.tasks
from dashboard.models import Notification, NotificationEvent, Role, Severity
from dashboard.services import notification_delivery
from dashboard.services.notification_delivery import notifications_deliver
from dashboard.services.posture_digest import posture_digest_queue
from tests.factories import (
    FindingFactory,
    MembershipFactory,
    NotificationChannelFactory,
    NotificationFactory,
    ReportFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        Receiver.received.append({"body": body, "type": self.headers.get("Content-Type"), "key": self.headers.get("X-Vigil-Notification")})
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _mail(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    settings.VIGIL_NOTIFY_MAX_PER_HOUR = 20
    settings.VIGIL_NOTIFY_MAX_ATTEMPTS = 3


def test_a_webhook_gets_one_json_post_with_the_text_and_the_key(receiver: str) -> None:
    row = NotificationFactory(channel=NotificationChannelFactory(url=receiver), subject="Vigil: 2 new critical findings")

    outcome = notifications_deliver()

    row.refresh_from_db()
    assert (outcome.sent, row.state, row.attempts) == (1, Notification.State.SENT, 1)
    assert Receiver.received == [
        {
            "body": {
                "text": f"*Vigil: 2 new critical findings*\n{row.text}",
                "vigil": {"event": row.event, "key": row.key, "link": row.link},
            },
            "type": "application/json",
            "key": row.key,
        }
    ]


def test_a_refusal_is_retried_after_a_minute_and_then_sent(receiver: str) -> None:
    row = NotificationFactory(channel=NotificationChannelFactory(url=receiver))
    Receiver.status = 500
    now = timezone.now()

    notifications_deliver(now=now)
    row.refresh_from_db()
    pending = (row.state, row.attempts, row.last_error, row.next_attempt_at)
    Receiver.status = 200
    too_soon = notifications_deliver(now=now + dt.timedelta(seconds=30)).sent
    notifications_deliver(now=now + dt.timedelta(minutes=1))
    row.refresh_from_db()

    assert pending == (Notification.State.PENDING, 1, "webhook answered 500", now + dt.timedelta(minutes=1))
    assert too_soon == 0
    assert (row.state, row.attempts, row.last_error, len(Receiver.received)) == (Notification.State.SENT, 2, "", 2)


def test_a_receiver_that_keeps_refusing_is_given_up_after_the_last_attempt(receiver: str) -> None:
    row = NotificationFactory(channel=NotificationChannelFactory(url=receiver))
    Receiver.status = 404
    later = timezone.now() + dt.timedelta(days=1)

    outcomes = [notifications_deliver(now=later + dt.timedelta(minutes=10 * n)) for n in range(4)]

    row.refresh_from_db()
    assert [(o.retried, o.failed) for o in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    assert (row.state, row.attempts) == (Notification.State.FAILED, 3)


def test_a_worker_lost_after_sending_sends_again_with_the_same_key(receiver: str, monkeypatch) -> None:
    row = NotificationFactory(channel=NotificationChannelFactory(url=receiver))
    real_send = notification_delivery._send

    def send_then_die(notification: Notification) -> None:
        real_send(notification)
        raise SystemExit("worker lost")

    monkeypatch.setattr(notification_delivery, "_send", send_then_die)
    with pytest.raises(SystemExit):
        notifications_deliver()
    row.refresh_from_db()
    after_crash = (row.state, row.attempts)
    monkeypatch.setattr(notification_delivery, "_send", real_send)
    notifications_deliver()
    row.refresh_from_db()

    assert after_crash == (Notification.State.PENDING, 0)
    assert row.state == Notification.State.SENT
    assert [r["key"] for r in Receiver.received] == [row.key, row.key]


def test_a_busy_channel_gets_at_most_the_hourly_limit_and_the_rest_an_hour_later(receiver: str) -> None:
    channel = NotificationChannelFactory(url=receiver)
    NotificationFactory.create_batch(25, channel=channel)
    now = timezone.now()

    first = notifications_deliver(now=now)
    second = notifications_deliver(now=now + dt.timedelta(minutes=61))

    assert (first.sent, first.throttled, second.sent) == (20, 5, 5)
    assert len(Receiver.received) == 25


def test_email_goes_one_message_each_to_the_active_members_in_the_chosen_roles() -> None:
    team, other = TeamFactory(), TeamFactory()
    champion = MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(email="champion@example.com"))
    MembershipFactory(team=team, role=Role.MEMBER, user=UserFactory(email="member@example.com"))
    MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(email="gone@example.com", is_active=False))
    MembershipFactory(team=other, role=Role.CHAMPION, user=UserFactory(email="other@example.com"))
    channel = NotificationChannelFactory(team=team, kind="email", url="", roles=[Role.CHAMPION])
    NotificationFactory(channel=channel, subject="Vigil: a report for the team failed")

    notifications_deliver()

    assert [(m.to, m.subject) for m in mail.outbox] == [([champion.user.email], "Vigil: a report for the team failed")]


def test_the_task_scans_and_delivers_in_one_run(receiver: str) -> None:
    team = TeamFactory(name="Payments")
    NotificationChannelFactory(team=team, url=receiver)
    report = ReportFactory(team=team, finished_at=timezone.now())
    FindingFactory(team=team, severity=Severity.CRITICAL, first_report=report)

    dashboard.tasks.run_notifications()
    dashboard.tasks.run_notifications()

    assert [r["body"]["vigil"]["event"] for r in Receiver.received] == [NotificationEvent.NEW_CRITICAL]  # type: ignore[index]


def test_managers_get_a_weekly_posture_digest_of_their_teams_only_once() -> None:
    payments, storefront, hidden = TeamFactory(name="Payments"), TeamFactory(name="Storefront"), TeamFactory(name="Hidden")
    manager = UserFactory(email="head@example.com")
    MembershipFactory(team=payments, user=manager, role=Role.MANAGER)
    MembershipFactory(team=storefront, user=manager, role=Role.MANAGER)
    MembershipFactory(team=payments, role=Role.CHAMPION, user=UserFactory(username="carol", email="carol@example.com"))
    MembershipFactory(team=hidden, role=Role.CHAMPION)

    written = (posture_digest_queue(force=True), posture_digest_queue(force=True))
    notifications_deliver()

    assert written == (1, 0)
    assert [m.to for m in mail.outbox] == [["head@example.com"]]
    body = mail.outbox[0].body
    assert "• Payments: 0 open (no figures a week ago), 0 critical, 0 overdue, nothing fixed with a due date; champion: carol" in body
    assert "• Storefront:" in body
    assert "Hidden" not in body
    assert "https://vigil.example.com/posture/teams/" in body
