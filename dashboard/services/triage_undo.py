"""Undo: restore what a status, assignment or severity event changed, one event or a whole bulk action."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import Finding, FindingEvent, Status
from dashboard.models.audit import AuditEvent
from dashboard.selectors.finding_detail import STATUS_EVENT_TYPES, undo_blocker
from dashboard.services import intel
from dashboard.services.finding_events import event_row, events_write
from dashboard.services.triage import (
    BulkResult,
    TriageRights,
    audit_changes,
    chunks,
    clean_reason,
    detach_from_acceptances,
    new_batch,
)

# --- undo -------------------------------------------------------------------------------------


def _undo_target(event: FindingEvent, finding: dict[str, Any]) -> tuple[str, Any] | str:
    """(field, value to restore) for an event, or why it cannot be undone."""
    blocker = undo_blocker(event, status=finding["status"], assignee_id=finding["assignee_id"], severity=finding["severity"])
    if blocker:
        return blocker
    if event.type in STATUS_EVENT_TYPES:
        return ("status", event.from_status)
    if event.type == FindingEvent.Type.ASSIGNED:
        return ("assignee_id", event.data.get("from_assignee"))
    return ("severity", event.data["from"])


def events_undo(
    *, events: Sequence[FindingEvent], by: Any, reason: str = "", now: dt.datetime | None = None, ip: str | None = None
) -> BulkResult:
    """Revert these events (from a finding's history or a whole bulk action), each recorded as an event."""
    now = now or timezone.now()
    text = clean_reason(reason, required=False) or "undo"
    result = BulkResult(batch=new_batch(), verb="restored")
    rights = TriageRights.of(by)
    by_team: dict[int | None, list[int]] = {}
    with transaction.atomic():
        for chunk in chunks(list(events)):
            undone = set(FindingEvent.objects.filter(undoes_id__in=[e.pk for e in chunk]).values_list("undoes_id", flat=True))
            findings: dict[int, dict[str, Any]] = {
                row["id"]: dict(row)
                for row in Finding.objects.filter(pk__in=sorted({e.finding_id for e in chunk}))
                .select_for_update()
                .values("id", "status", "assignee_id", "severity", "team_id")
            }
            updates: dict[tuple[str, Any], list[int]] = {}
            new_events: list[dict[str, Any]] = []
            for event in chunk:
                finding = findings.get(event.finding_id)
                if finding is None:
                    continue
                target = _undoable(event, finding, undone, rights)
                if isinstance(target, str):
                    result.skip(target)
                    continue
                field, value = target
                updates.setdefault((field, value), []).append(event.finding_id)
                finding[field] = value
                new_events.append(_undo_event(event, field, value, by=by, now=now, reason=text, batch=result.batch))
                result.changed.append(event.finding_id)
                if field == "status":
                    by_team.setdefault(finding["team_id"], []).append(event.finding_id)
                if field == "status" and event.to_status == Status.RISK_ACCEPTED:
                    detach_from_acceptances(ids=[event.finding_id])
            _apply_undo_updates(updates, now)
            events_write(new_events)
        audit_changes(
            action=AuditEvent.Action.STATUS_CHANGED,
            by=by,
            ip=ip,
            ids_by_team=by_team,
            summary="undo: {n} finding{s} back to their earlier status",
            reason=text,
            details={"batch": str(result.batch)},
        )
    return result


def _undoable(event: FindingEvent, finding: dict[str, Any], undone: set[int], rights: TriageRights) -> tuple[str, Any] | str:
    """(field, value to restore) for an event this actor may undo, or why not."""
    if event.pk in undone:
        return "already undone"
    if not rights.may_triage(finding["team_id"]):
        return "you may not triage this team's findings"
    return _undo_target(event, finding)


def _undo_event(event: FindingEvent, field: str, value: Any, *, by: Any, now: dt.datetime, reason: str, batch: uuid.UUID) -> dict[str, Any]:
    """The UNDONE event recording that ``event`` was reverted (``field`` back to ``value``)."""
    data: dict[str, Any] = {}
    if field == "assignee_id":
        data = {"from_assignee": event.data.get("to_assignee"), "to_assignee": value}
    elif field == "severity":
        data = {"from": event.data.get("to"), "to": value}
    return event_row(
        finding_id=event.finding_id,
        type=FindingEvent.Type.UNDONE,
        by=by,
        now=now,
        reason=reason,
        from_status=event.to_status if field == "status" else "",
        to_status=str(value) if field == "status" else "",
        batch=batch,
        data=data,
        undoes_id=event.pk,
    )


def _apply_undo_updates(updates: dict[tuple[str, Any], list[int]], now: dt.datetime) -> None:
    rescore: list[int] = []
    for (field, value), ids in updates.items():
        fields: dict[str, Any] = {field: value}
        if field == "status":
            fields["status_changed_at"] = now
            fields["fixed_at"] = now if value == Status.FIXED else None
        Finding.objects.filter(pk__in=ids).update(**fields)
        if field == "severity":
            rescore.extend(ids)
    if rescore:
        intel.findings_rescore(ids=rescore, today=now.date())


def event_undo(*, event: FindingEvent, by: Any, reason: str = "", ip: str | None = None) -> FindingEvent:
    """Undo one event from a finding's history; raises with the reason when it cannot be undone.

    Status changes undo like a stack: only the latest one of a finding.
    """
    if FindingEvent.objects.filter(undoes=event).exists():
        raise ApplicationError("cannot undo: already undone", code="cannot_undo", status=409)
    if event.type in STATUS_EVENT_TYPES:
        latest = (
            FindingEvent.objects.filter(finding_id=event.finding_id, type__in=STATUS_EVENT_TYPES)
            .exclude(from_status="")
            .order_by("-created_at", "-id")
            .first()
        )
        if latest is not None and latest.pk != event.pk:
            raise ApplicationError("cannot undo: a later status change must be undone first", code="cannot_undo", status=409)
    result = events_undo(events=[event], by=by, reason=reason, ip=ip)
    if not result.changed:
        why = next(iter(result.skipped), "nothing to undo")
        status = 403 if why.startswith("you may not") else 409
        raise ApplicationError(f"cannot undo: {why}", code="cannot_undo", status=status)
    return FindingEvent.objects.filter(undoes=event).latest("id")


def batch_undo(*, batch: uuid.UUID, by: Any, reason: str = "", ip: str | None = None) -> BulkResult:
    """Undo every change of one bulk action (the findings changed since are skipped, with the reason)."""
    events = list(FindingEvent.objects.filter(batch=batch).exclude(type=FindingEvent.Type.UNDONE).order_by("id"))
    if not events:
        raise ApplicationError("no such bulk action", code="not_found", status=404)
    return events_undo(events=events, by=by, reason=reason, ip=ip)
