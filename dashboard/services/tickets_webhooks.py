"""A tracker's webhook about one of Vigil's tickets: closing it marks its findings fixed pending re-scan.

The request proves itself the tracker's way (GitHub's and Jira's HMAC signatures, GitLab's token);
an unproved request changes nothing and answers 403, the same whether or not the team has a tracker.  Fixed here
means "fixed until the next scan": a scan that still sees a finding reopens it (the ingest reopen path), and
``reopen.findings_reopen`` records on the link that the closed ticket did not fix it.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from dashboard.actors import SystemActor
from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, Finding, Status, Ticket, TrackerConfig
from dashboard.models.audit import AuditEvent
from dashboard.services import triage
from dashboard.services.audit import audit_record
from dashboard.trackers import CLIENTS


def tracker_webhook(*, team_slug: str, kind: str, headers: Mapping[str, str], body: bytes) -> str:
    """Apply a proved webhook; returns what happened ("closed", "reopened", "ignored")."""
    tracker = TrackerConfig.objects.filter(team__slug=team_slug, kind=kind).select_related("team").first()
    client = CLIENTS.get(kind)
    event = (
        client.webhook(headers=headers, body=body, secret=tracker.webhook_secret) if tracker is not None and client is not None else None
    )
    if tracker is None or event is None:
        raise ApplicationError("the webhook's signature or secret does not match", code="bad_signature", status=403)
    if event.closed is None:
        return "ignored"
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(tracker=tracker, external_id=event.external_id).first()
        if ticket is None:
            return "ignored"
        return _ticket_closed(ticket) if event.closed else _ticket_reopened(ticket)


def _label(ticket: Ticket) -> str:
    return f"{ticket.tracker.kind} {ticket.external_id}"


def _tracker_actor(ticket: Ticket) -> SystemActor:
    """The tracker acting on its own ticket's findings: its signed webhook is the proof of its right."""
    return SystemActor(_label(ticket))


def _ticket_closed(ticket: Ticket) -> str:
    now = timezone.now()
    ticket.state, ticket.closed_at = Ticket.State.CLOSED, now
    ticket.save(update_fields=["state", "closed_at"])
    ids = list(Finding.objects.filter(tickets=ticket, status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    reason = f"ticket {_label(ticket)} was closed: fixed pending re-scan (the next scan reopens what it still sees)"
    result = triage.findings_set_status(
        ids=ids, by=_tracker_actor(ticket), status=Status.FIXED, reason=reason, now=now, data={"ticket": ticket.pk}
    )
    _audit(ticket, f"ticket {_label(ticket)} closed: {len(result.changed)} finding(s) fixed pending re-scan", result.changed)
    return "closed"


def _ticket_reopened(ticket: Ticket) -> str:
    """Reopened in the tracker: the findings it fixed are open again, with the ticket still theirs."""
    ticket.state, ticket.closed_at = Ticket.State.OPEN, None
    ticket.save(update_fields=["state", "closed_at"])
    ids = list(Finding.objects.filter(tickets=ticket, status=Status.FIXED).values_list("id", flat=True))
    reason = f"ticket {_label(ticket)} was reopened in the tracker"
    result = triage.findings_set_status(ids=ids, by=_tracker_actor(ticket), status=Status.OPEN, reason=reason, data={"ticket": ticket.pk})
    _audit(ticket, f"ticket {_label(ticket)} reopened: {len(result.changed)} finding(s) open again", result.changed)
    return "reopened"


def _audit(ticket: Ticket, summary: str, ids: list[int]) -> None:
    audit_record(
        action=AuditEvent.Action.TICKET_CLOSED,
        summary=summary,
        actor=None,
        team=ticket.team,
        target_type="ticket",
        target_id=str(ticket.pk),
        details={"findings": ids[:1000], "url": ticket.url},
    )
