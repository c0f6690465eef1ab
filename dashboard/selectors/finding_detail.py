"""Everything the finding page shows, in a fixed number of queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.http import Http404

from dashboard.models import (
    Comment,
    EpssScore,
    Finding,
    FindingEvent,
    FindingOccurrence,
    KevEntry,
    Membership,
    Report,
    RiskAcceptance,
    Status,
)

#: Event types whose status change an undo can revert.
STATUS_EVENT_TYPES = (FindingEvent.Type.STATUS, FindingEvent.Type.FIXED, FindingEvent.Type.REOPENED, FindingEvent.Type.UNDONE)


def undo_blocker(event: FindingEvent, *, status: str, assignee_id: int | None, severity: str) -> str:
    """Why this event cannot be undone on a finding in this state ("" when it can)."""
    if event.type in STATUS_EVENT_TYPES:
        if not event.from_status:
            return "this event did not change the status"
        if status != event.to_status:
            return "the finding changed since"
        if event.from_status == Status.RISK_ACCEPTED:
            return "a risk acceptance cannot be restored by undo: request a new one"
        return ""
    if event.type == FindingEvent.Type.ASSIGNED:
        return "" if assignee_id == event.data.get("to_assignee") else "the finding was reassigned since"
    if event.type == FindingEvent.Type.SEVERITY:
        return "" if severity == event.data.get("to") and event.data.get("from") else "the severity changed since"
    return "this kind of event cannot be undone"


@dataclasses.dataclass
class Created:
    """The first entry of a finding's history, read from the finding (its creation is not an event): when it was
    first seen and by which report.  Shaped like a FindingEvent for the page."""

    created_at: dt.datetime
    report: Report | None
    type: str = "created"
    from_status: str = ""
    to_status: str = Status.OPEN
    reason: str = ""
    actor: None = None
    triage_rule: None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    pk: None = None
    undone: bool = False
    can_undo: bool = False


@dataclasses.dataclass
class FindingDetail:
    finding: Finding
    #: Newest first, ending with its creation.
    events: list[FindingEvent | Created]
    comments: list[Comment]
    occurrences: list[FindingOccurrence]
    acceptances: list[RiskAcceptance]
    kev: KevEntry | None
    epss: EpssScore | None
    elsewhere: list[Finding]
    members: list[Any]


def finding_detail(*, user: Any, pk: int) -> FindingDetail:
    related = ("team", "image", "assignee", "last_report", "first_report", "owner_rule")
    finding = Finding.objects.visible_to(user).select_related(*related).filter(pk=pk).first()
    if finding is None:
        raise Http404("no such finding")
    events = list(finding.events.select_related("actor", "report", "triage_rule")[:200])
    undone = set(FindingEvent.objects.filter(undoes__in=[e.pk for e in events]).values_list("undoes_id", flat=True)) if events else set()
    latest_undoable = True
    for event in events:
        is_undone = event.pk in undone
        blocker = (
            "already undone"
            if is_undone
            else undo_blocker(event, status=finding.status, assignee_id=finding.assignee_id, severity=finding.severity)
        )
        # Only the latest status change can be undone, so history reads as a stack.
        is_status = event.type in STATUS_EVENT_TYPES
        can_undo = not blocker and (latest_undoable or not is_status)
        if is_status and event.from_status:
            latest_undoable = False
        event.undone = is_undone  # type: ignore[attr-defined]
        event.can_undo = can_undo  # type: ignore[attr-defined]
    cve = finding.rule_id.upper()
    user_model = get_user_model()
    members = (
        list(
            user_model.objects.filter(pk__in=Membership.objects.filter(team_id=finding.team_id).values("user_id"), is_active=True).order_by(
                "username"
            )
        )
        if finding.team_id
        else []
    )
    return FindingDetail(
        finding=finding,
        events=[*events, Created(created_at=finding.first_seen, report=finding.first_report)],
        comments=list(finding.comments.select_related("author")),
        occurrences=list(finding.occurrence_set.all()[:200]),
        acceptances=list(finding.risk_acceptances.select_related("requested_by", "approved_by").order_by("-created_at", "-id")[:20]),
        kev=KevEntry.objects.filter(cve=cve).first() if cve.startswith("CVE-") else None,
        epss=EpssScore.objects.filter(cve=cve).first() if cve.startswith("CVE-") else None,
        elsewhere=list(
            Finding.objects.visible_to(user)
            .filter(rule_id=finding.rule_id, package_name=finding.package_name)
            .exclude(pk=finding.pk)
            .select_related("image", "team")
            .order_by("-last_seen")[:20]
        ),
        members=members,
    )
