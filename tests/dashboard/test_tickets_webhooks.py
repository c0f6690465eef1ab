"""A tracker's proved webhook closes its ticket: findings fixed pending re-scan; a scan that still sees them reopens them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from bench.reportgen import trivy_report
from dashboard.models import AuditEvent, Finding, FindingEvent, Status, Ticket, TrackerKind
from dashboard.trackers import github
from dashboard.trackers.base import hmac_sha256
from tests.dashboard.ingest_helpers import ingest
from tests.factories import FindingFactory, TeamFactory, TicketFactory, TicketLinkFactory, TrackerConfigFactory

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/payments/api"


def closed(number: int, action: str = "closed") -> bytes:
    return json.dumps({"action": action, "issue": {"number": number, "state": "closed"}}).encode()


def deliver(kind: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    # A tracker sends no CSRF token: the route must not ask for one.
    response = Client(enforce_csrf_checks=True).post(
        f"/api/v1/trackers/payments/{kind}/webhook", body, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


@pytest.fixture
def ticket():
    tracker = TrackerConfigFactory(team=TeamFactory(slug="payments"), kind=TrackerKind.GITHUB, webhook_secret="hook-secret")
    ticket = TicketFactory(tracker=tracker, external_id="42")
    TicketLinkFactory(ticket=ticket, finding=FindingFactory(team=tracker.team, status=Status.IN_PROGRESS))
    TicketLinkFactory(ticket=ticket, finding=FindingFactory(team=tracker.team, status=Status.FALSE_POSITIVE))
    return ticket


def test_a_signed_close_marks_the_ticket_closed_and_its_active_findings_fixed_by_the_tracker(ticket) -> None:
    body = closed(42)

    status, answer = deliver("github", body, {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github.signature(body, "hook-secret")})

    ticket.refresh_from_db()
    assert (status, answer, ticket.state) == (200, {"outcome": "closed"}, Ticket.State.CLOSED)
    assert sorted(ticket.findings.values_list("status", flat=True)) == [Status.FALSE_POSITIVE, Status.FIXED]
    event = FindingEvent.objects.get(to_status=Status.FIXED)
    assert (event.actor, event.data) == (None, {"ticket": ticket.pk, "by": "github 42"})
    assert "fixed pending re-scan" in event.reason
    assert AuditEvent.objects.filter(action="ticket.closed", target_id=str(ticket.pk)).count() == 1


def test_an_unsigned_or_forged_webhook_is_refused_and_changes_nothing(ticket) -> None:
    body = closed(42)

    unsigned = deliver("github", body, {"X-GitHub-Event": "issues"})
    forged = deliver("github", body, {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github.signature(body, "guess")})
    wrong_kind = deliver("gitlab", body, {"X-Gitlab-Token": "hook-secret"})

    assert [unsigned[0], forged[0], wrong_kind[0]] == [403, 403, 403]
    assert Ticket.objects.get(pk=ticket.pk).state == Ticket.State.OPEN
    assert not Finding.objects.filter(status=Status.FIXED).exists()


def test_a_reopened_issue_reopens_the_findings_its_close_fixed(ticket) -> None:
    for action in ("closed", "reopened"):
        body = closed(42, action)
        deliver("github", body, {"X-GitHub-Event": "issues", "X-Hub-Signature-256": github.signature(body, "hook-secret")})

    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.OPEN
    assert sorted(ticket.findings.values_list("status", flat=True)) == [Status.FALSE_POSITIVE, Status.OPEN]


def test_a_jira_webhook_proves_itself_with_its_hmac_signature() -> None:
    tracker = TrackerConfigFactory(team=TeamFactory(slug="payments"), kind=TrackerKind.JIRA, webhook_secret="jira-secret")
    link = TicketLinkFactory(ticket=TicketFactory(tracker=tracker, external_id="SEC-12"))
    body = json.dumps(
        {"webhookEvent": "jira:issue_updated", "issue": {"key": "SEC-12", "fields": {"status": {"statusCategory": {"key": "done"}}}}}
    ).encode()

    refused = deliver("jira", body, {"X-Hub-Signature": hmac_sha256(body, "guess")})
    accepted = deliver("jira", body, {"X-Hub-Signature": hmac_sha256(body, "jira-secret")})

    link.finding.refresh_from_db()
    assert (refused[0], accepted) == (403, (200, {"outcome": "closed"}))
    assert link.finding.status == Status.FIXED


def test_the_next_scan_that_still_sees_a_finding_reopens_it_and_marks_the_closed_ticket(django_capture_on_commit_callbacks) -> None:
    team = TeamFactory(slug="payments")
    report = json.dumps(trivy_report(3, image=IMAGE)).encode()
    ingest(report, team="payments")
    finding = Finding.objects.order_by("id").first()
    tracker = TrackerConfigFactory(team=team, kind=TrackerKind.GITLAB, webhook_secret="gl-secret")
    link = TicketLinkFactory(ticket=TicketFactory(tracker=tracker, external_id="7"), finding=finding)
    body = json.dumps({"object_kind": "issue", "object_attributes": {"iid": 7, "action": "close"}}).encode()
    deliver("gitlab", body, {"X-Gitlab-Token": "gl-secret"})

    again = ingest(report, team="payments")

    finding.refresh_from_db()
    link.refresh_from_db()
    assert again.counts["reopened"] == 1
    assert finding.status == Status.OPEN
    assert link.seen_after_close is True
    assert list(finding.events.order_by("created_at", "id").values_list("type", flat=True)) == ["status", "reopened"]
