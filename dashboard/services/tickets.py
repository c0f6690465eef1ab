"""Tickets in a team's tracker: configuring the tracker, asking for a ticket, creating it (the Celery task's body).

A ticket is about one finding, a selection, or a fix group (the active findings one upgrade fixes: same team,
image, package and fixed version).  A finding never gets two tickets for one tracker (``TicketLink``'s
constraint): asking again answers the ticket it already has.  Asking moves the findings to in progress
through the triage writer; the tracker's webhook (``tickets_webhooks``) closes them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.ingest.publish import TASKS, enqueue
from dashboard.models import ACTIVE_STATUSES, Finding, Status, Team, Ticket, TicketLink, TrackerConfig, TrackerKind
from dashboard.models.audit import AuditEvent
from dashboard.services import triage
from dashboard.services.audit import audit_record
from dashboard.services.team_settings import can_change_team_settings
from dashboard.trackers import CLIENTS, Draft, TrackerError

#: The Celery task (dashboard/tasks.py) that creates a requested ticket in its tracker; takes the ticket id.
#: Findings listed in one ticket's text; the rest are counted.
LISTED = 50


def tracker_configure(
    *,
    team: Team,
    by: Any,
    kind: str,
    base_url: str,
    project: str,
    username: str = "",
    secret: str = "",
    issue_type: str = "",
    ip: str | None = None,
) -> TrackerConfig:
    """Set the team's tracker.  A blank secret keeps the one stored; the webhook secret is made once."""
    if not can_change_team_settings(by, team):
        raise ApplicationError("only the team's champions and administrators may configure its tracker", code="forbidden", status=403)
    if kind not in TrackerKind.values:
        raise ApplicationError(f"tracker must be one of: {', '.join(TrackerKind.values)}", code="invalid_tracker")
    base_url, project = base_url.strip().rstrip("/"), project.strip()
    if not base_url.startswith(("https://", "http://")) or not project:
        raise ApplicationError("the tracker needs a base URL (https://...) and a project", code="invalid_tracker")
    if kind == TrackerKind.JIRA and not username.strip():
        raise ApplicationError("Jira needs the account's email for basic authentication", code="invalid_tracker")
    config = TrackerConfig.objects.filter(team=team).first() or TrackerConfig(team=team, webhook_secret=secrets.token_urlsafe(32))
    if not secret.strip() and not config.secret:
        raise ApplicationError("the tracker needs an API token", code="invalid_tracker")
    config.kind, config.base_url, config.project, config.username = kind, base_url, project, username.strip()
    config.issue_type = issue_type.strip() or "Bug"
    config.secret = secret.strip() or config.secret
    config.save()
    audit_record(
        action=AuditEvent.Action.TRACKER_CHANGED,
        summary=f"{team.slug}'s tracker set to {kind} {project}",
        actor=by,
        ip=ip,
        team=team,
        target_type="tracker",
        target_id=str(config.pk),
        details={"kind": kind, "base_url": base_url, "project": project, "secret_changed": bool(secret.strip())},
    )
    return config


def fix_group(finding: Finding) -> list[int]:
    """The active findings of the same upgrade: team, image, package and the version that fixes it."""
    if not finding.package_name or not finding.fixed_version:
        raise ApplicationError("this finding has no fixed version: there is no upgrade to group by", code="no_fix_group")
    same_place: dict[str, int | None] = {"team_id": finding.team_id, "image_id": finding.image_id}  # None: IS NULL
    rows = Finding.objects.filter(
        **same_place,
        package_name=finding.package_name,
        fixed_version=finding.fixed_version,
        status__in=ACTIVE_STATUSES,
    )
    return sorted({*rows.values_list("id", flat=True), finding.pk})


def _subject(ids: Sequence[int], group_of: Finding | None) -> str:
    if group_of is not None:
        return f"fix:{group_of.image_id}:{group_of.package_name}:{group_of.fixed_version}"[:600]
    if len(ids) == 1:
        return f"finding:{ids[0]}"
    return "selection:" + hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def _title(findings: Sequence[Finding], group_of: Finding | None) -> str:
    if group_of is not None:
        image = group_of.image.repository if group_of.image is not None else "no image"
        return f"Upgrade {group_of.package_name} to {group_of.fixed_version} in {image} ({len(findings)} findings)"[:255]
    if len(findings) == 1:
        only = findings[0]
        return f"[{only.severity}] {only.rule_id} {only.package_name or only.resource_name or only.title}".strip()[:255]
    return f"{len(findings)} security findings to fix"


def _requested_findings(by: Any, ids: Sequence[int]) -> list[Finding]:
    findings = list(Finding.objects.visible_to(by).filter(pk__in=set(ids)).select_related("image").order_by("id"))
    if not findings or len(findings) != len(set(ids)):
        raise ApplicationError("no such finding", code="not_found", status=404)
    if len({finding.team_id for finding in findings}) != 1 or findings[0].team_id is None:
        raise ApplicationError("a ticket goes to one team's tracker: choose findings of one team", code="one_team")
    if not triage.may_triage(by, findings[0].team_id):
        raise ApplicationError("you may not triage this team's findings", code="forbidden", status=403)
    return findings


def ticket_request(*, by: Any, ids: Sequence[int] = (), group_of: int | None = None, ip: str | None = None) -> Ticket:
    """Ask for a ticket about findings ``ids`` or about the fix group of finding ``group_of``; the task creates it."""
    group_finding = _requested_findings(by, [group_of])[0] if group_of is not None else None
    ids = fix_group(group_finding) if group_finding is not None else list(ids)
    findings = _requested_findings(by, ids)
    team_id = findings[0].team_id
    if team_id is None:  # _requested_findings refused unowned findings already
        raise ApplicationError("unowned findings have no tracker", code="no_tracker", status=409)
    tracker = TrackerConfig.objects.filter(team_id=team_id).first()
    if tracker is None:
        raise ApplicationError("this team has no tracker: a champion sets one in the team's settings", code="no_tracker", status=409)
    with transaction.atomic():
        locked = list(
            Finding.objects.filter(pk__in=[f.pk for f in findings]).select_for_update().order_by("id").values_list("id", flat=True)
        )
        linked = dict(TicketLink.objects.filter(tracker=tracker, finding_id__in=locked).values_list("finding_id", "ticket_id"))
        fresh = [finding for finding in findings if finding.pk not in linked]
        if not fresh:
            existing = Ticket.objects.get(pk=linked[findings[0].pk])
            if existing.state == Ticket.State.PENDING:
                _enqueue_create(existing.pk)  # its first publish may have failed
            return existing
        ticket, _ = Ticket.objects.get_or_create(
            tracker=tracker,
            subject=_subject([f.pk for f in fresh], group_finding),
            defaults={
                "team_id": team_id,
                "title": _title(fresh, group_finding),
                "created_by": triage.person_of(by),
                "created_at": timezone.now(),
            },
        )
        TicketLink.objects.bulk_create([TicketLink(ticket=ticket, finding=finding, tracker=tracker) for finding in fresh])
        moving = [f.pk for f in fresh if f.status in (Status.OPEN, Status.TRIAGED)]
        reason = f"a ticket was requested in the team's {tracker.kind} tracker"
        triage.findings_set_status(ids=moving, by=by, status=Status.IN_PROGRESS, reason=reason, ip=ip, data={"ticket": ticket.pk})
        audit_record(
            action=AuditEvent.Action.TICKET_REQUESTED,
            summary=f"ticket requested in {tracker.kind} for {len(fresh)} finding{'s' if len(fresh) != 1 else ''}",
            actor=by,
            ip=ip,
            team=ticket.team,
            target_type="ticket",
            target_id=str(ticket.pk),
            details={"findings": [f.pk for f in fresh][:1000], "subject": ticket.subject},
        )
        _enqueue_create(ticket.pk)
    return ticket


def _enqueue_create(ticket_id: int) -> None:
    def publish() -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            ticket_create(ticket_id=ticket_id)
            return
        # A failed publish leaves the ticket pending: asking again publishes again.
        enqueue(TASKS.CREATE_TICKET, [ticket_id])

    transaction.on_commit(publish)


def ticket_draft(ticket: Ticket) -> Draft:
    """The issue's text: why, which findings, and links back to Vigil."""
    findings = list(ticket.findings.select_related("image").order_by("-risk_score", "id")[: LISTED + 1])
    lines = [f"Vigil asks the {ticket.team.name} team to fix these security findings.", ""]
    for finding in findings[:LISTED]:
        package = (
            f" {finding.package_name} {finding.package_version} -> {finding.fixed_version or 'no fix yet'}" if finding.package_name else ""
        )
        image = f" in {finding.image.repository}" if finding.image is not None else ""
        url = settings.VIGIL_BASE_URL + reverse("finding", kwargs={"pk": finding.pk})
        lines.append(f"- [{finding.severity}] {finding.rule_id}{package}{image}, due {finding.due_date or 'no date'}: {url}")
    total = ticket.links.count()
    if total > LISTED:
        lines.append(f"... and {total - LISTED} more in Vigil.")
    lines += ["", "Closing this issue marks the findings fixed in Vigil until the next scan: if it still sees them, they reopen."]
    return Draft(title=ticket.title, body="\n".join(lines))


def ticket_create(*, ticket_id: int) -> Ticket:
    """Create a requested ticket in its tracker.  Idempotent: a ticket created already is left as it is.

    The row stays locked during the call, so a second delivery of the task waits and then finds it created.
    A refusal that trying again cannot fix marks the ticket failed; anything else raises for Celery to retry.
    """
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("tracker", "team").get(pk=ticket_id)
        if ticket.state != Ticket.State.PENDING or ticket.external_id:
            return ticket
        tracker = ticket.tracker
        client = CLIENTS[tracker.kind]
        try:
            created = client.create(
                base_url=tracker.base_url,
                project=tracker.project,
                username=tracker.username,
                secret=tracker.secret,
                issue_type=tracker.issue_type,
                draft=ticket_draft(ticket),
            )
        except TrackerError as error:
            if error.retry:
                raise
            ticket.state, ticket.error = Ticket.State.FAILED, str(error)[:2000]
            ticket.save(update_fields=["state", "error"])
            return ticket
        ticket.state, ticket.external_id, ticket.url, ticket.error = Ticket.State.OPEN, created.external_id, created.url, ""
        ticket.save(update_fields=["state", "external_id", "url", "error"])
    return ticket
