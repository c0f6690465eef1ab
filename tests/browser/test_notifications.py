"""A champion adds a chat webhook on the team settings page; the next run posts a new critical to it (a real local
receiver) and the page lists it as sent, with the webhook URL masked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

import dashboard.tasks
from dashboard.models import NotificationChannel
from tests.browser.conftest import login
from tests.factories import FindingFactory, MembershipFactory, ReportFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


class Chat(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:
        Chat.received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_champion_adds_a_webhook_and_the_team_hears_of_a_new_critical(live_server, transactional_db, page) -> None:
    Chat.received = []
    server = HTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret-part-Q7rZ"
    team = TeamFactory(slug="payments", name="Payments")
    MembershipFactory(user=UserFactory(username="champion"), team=team, role="champion")
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    login(page, live_server.url, "champion", "correct-horse-battery")

    page.goto(f"{live_server.url}/teams/payments/settings/")
    page.fill("#channel-add input[name=name]", "#payments-sec")
    page.fill("#channel-add input[name=url]", hook)
    page.click("#channel-add >> text=Add channel")
    page.wait_for_load_state("networkidle")
    added = page.inner_text("main")
    report = ReportFactory(team=team, finished_at=timezone.now(), format="trivy", image_ref="registry.example.com/payments/api:1.4.2")
    FindingFactory(team=team, severity="critical", rule_id="CVE-2023-0286", first_report=report)
    dashboard.tasks.run_notifications()
    page.reload()
    server.shutdown()
    server.server_close()

    section = page.inner_text("#notifications")
    assert "Channel added." in added
    assert "#payments-sec" in section and f"http://127.0.0.1:{server.server_port}/…Q7rZ" in section
    assert "secret-part" not in page.content()
    assert "Vigil: 1 new critical or KEV finding for Payments" in section and "sent" in section
    assert NotificationChannel.objects.get().events == ["new_critical", "sla_tomorrow", "admission_denial", "runtime_alert",
                                                        "acceptance_expiring", "report_problem"]  # fmt: skip
    assert len(Chat.received) == 1 and "CVE-2023-0286" in str(Chat.received[0]["text"])
    assert page.console_errors == []
