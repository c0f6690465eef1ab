"""Triage decisions on findings: status transitions, assignment, comments and undo.

Every change is a FindingEvent with who (a person, a token or a rule), when and why.
Functions take many ids and use a constant number of queries per batch, so a bulk
action over "everything matching this filter" costs the same per finding as one.
Risk acceptance has its own module (``risk_acceptance``); ``finding_updates`` is the
entry point the UI and the API call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dashboard.actors import SystemActor
from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, Comment, Finding, FindingEvent, Membership, RiskAcceptance, Status, Team
from dashboard.models.access import sees_everything
from dashboard.models.audit import AuditEvent
from dashboard.selectors import access
from dashboard.services.audit import actor_label as audit_actor_label
from dashboard.services.audit import audit_record
from dashboard.services.finding_events import event_row, events_write, person_of
from dashboard.services.reopen import Reopening, findings_reopen

BATCH = 1000

#: Which status a person may move a finding to, from each status (PRODUCT.md "Statuses").
#: risk_accepted is reached through a risk acceptance (reason, expiry, maybe a second approver).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset(
        {Status.TRIAGED, Status.IN_PROGRESS, Status.FIXED, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE, Status.DUPLICATE}
    ),
    Status.TRIAGED: frozenset(
        {Status.OPEN, Status.IN_PROGRESS, Status.FIXED, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE, Status.DUPLICATE}
    ),
    Status.IN_PROGRESS: frozenset(
        {Status.OPEN, Status.TRIAGED, Status.FIXED, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE, Status.DUPLICATE}
    ),
    Status.FIXED: frozenset({Status.OPEN}),
    Status.RISK_ACCEPTED: frozenset({Status.OPEN}),
    Status.FALSE_POSITIVE: frozenset({Status.OPEN}),
    Status.DUPLICATE: frozenset({Status.OPEN}),
}
#: Closing a finding, or reopening a closed one, needs a reason.
REASON_REQUIRED = frozenset({Status.FIXED, Status.RISK_ACCEPTED, Status.FALSE_POSITIVE, Status.DUPLICATE})


# --- who may do what --------------------------------------------------------------------------


class TriageRights:
    """Who may triage or accept risk, per team, for one actor: dashboard.selectors.access decides, cached per team.

    A bulk action over many teams asks once per team, not once per finding.
    """

    def __init__(self, by: Any) -> None:
        self.by = by
        self.staff = sees_everything(by)
        self._actions: dict[int | None, frozenset[str]] = {}

    @classmethod
    def of(cls, by: Any) -> TriageRights:
        return cls(by)

    def actions(self, team_id: int | None) -> frozenset[str]:
        if team_id not in self._actions:
            team = Team.objects.filter(pk=team_id).first() if team_id is not None else None
            self._actions[team_id] = access.team_actions(self.by, team) if team is not None or team_id is None else frozenset()
        return self._actions[team_id]

    def may_triage(self, team_id: int | None) -> bool:
        return access.TRIAGE in self.actions(team_id)

    def may_accept_risk(self, team_id: int | None) -> bool:
        return access.ACCEPT_RISK in self.actions(team_id)


def may_triage(by: Any, team_id: int | None) -> bool:
    return TriageRights.of(by).may_triage(team_id)


def may_accept_risk(by: Any, team_id: int | None) -> bool:
    return TriageRights.of(by).may_accept_risk(team_id)


def actor_label(by: Any) -> str:
    return audit_actor_label(by)


def audit_changes(
    *,
    action: str,
    by: Any,
    ip: str | None,
    ids_by_team: dict[int | None, list[int]],
    summary: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """One audit record per team for a (bulk) change; ``summary`` may use {n} and {s} (plural s)."""
    teams = Team.objects.in_bulk([pk for pk, ids in ids_by_team.items() if pk is not None and ids])
    for team_id, ids in ids_by_team.items():
        if not ids:
            continue
        audit_record(
            action=action,
            summary=summary.format(n=len(ids), s="" if len(ids) == 1 else "s"),
            actor=by,
            ip=ip,
            team=teams.get(team_id) if team_id is not None else None,
            target_type="finding",
            target_id=str(ids[0]) if len(ids) == 1 else "",
            reason=reason,
            details={**(details or {}), "count": len(ids), "findings": ids[:1000]},
        )


# --- results and events -----------------------------------------------------------------------


@dataclasses.dataclass
class BulkResult:
    """What a (bulk) action did: the findings changed, the ones skipped and why, its batch id."""

    batch: uuid.UUID
    changed: list[int] = dataclasses.field(default_factory=list)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    pending_acceptances: list[int] = dataclasses.field(default_factory=list)
    verb: str = "changed"

    def skip(self, why: str, count: int = 1) -> None:
        if count:
            self.skipped[why] = self.skipped.get(why, 0) + count

    def merge(self, other: BulkResult) -> None:
        known = set(self.changed)
        self.changed.extend(pk for pk in other.changed if pk not in known)
        for why, count in other.skipped.items():
            self.skip(why, count)
        self.pending_acceptances.extend(other.pending_acceptances)

    @property
    def message(self) -> str:
        n = len(self.changed)
        parts = [f"{n} finding{'s' if n != 1 else ''} {self.verb}."] if self.changed or not self.pending_acceptances else []
        if self.pending_acceptances:
            ids = ", ".join(f"#{pk}" for pk in self.pending_acceptances)
            parts.append(f"Risk acceptance {ids} waits for a second person's approval.")
        parts.extend(f"{count} skipped: {why}." for why, count in sorted(self.skipped.items()))
        return " ".join(parts)


def new_batch() -> uuid.UUID:
    return uuid.uuid4()


def chunks(values: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def clean_reason(reason: str | None, *, required: bool, what: str = "this change") -> str:
    text = (reason or "").strip()
    if required and not text:
        raise ApplicationError(f"{what} needs a reason: say why, for the people who read the history later", code="reason_required")
    if len(text) > 5000:
        raise ApplicationError("the reason is longer than 5000 characters", code="reason_too_long")
    return text


# --- status transitions -----------------------------------------------------------------------


def detach_from_acceptances(*, ids: Sequence[int]) -> None:
    """Findings leaving risk_accepted by hand no longer count as covered by their acceptances."""
    through = RiskAcceptance.findings.through
    for chunk in chunks(list(ids)):
        through.objects.filter(finding_id__in=chunk, riskacceptance__state=RiskAcceptance.State.APPROVED).delete()


def findings_set_status(
    *,
    ids: Iterable[int],
    by: Any,
    status: str,
    reason: str = "",
    now: dt.datetime | None = None,
    batch: uuid.UUID | None = None,
    ip: str | None = None,
    data: dict[str, Any] | None = None,
) -> BulkResult:
    """Move findings to ``status`` (not risk_accepted: see risk_acceptance.acceptance_request).

    ``by`` may be a ``SystemActor`` that has proved its right otherwise (a tracker's signed webhook about its own
    ticket's findings): no person's rights are asked, and the events say which one acted.  ``data`` goes on every event.
    """
    if status not in Status.values:
        raise ApplicationError(f"unknown status {status!r}; use one of: {', '.join(Status.values)}", code="invalid_status")
    if status == Status.RISK_ACCEPTED:
        raise ApplicationError("accepting risk needs a risk acceptance with a reason and an expiry", code="use_risk_acceptance")
    text = clean_reason(reason, required=status in REASON_REQUIRED, what=f"marking findings {status.replace('_', ' ')}")
    now = now or timezone.now()
    result = BulkResult(batch=batch or new_batch(), verb=f"now {status.replace('_', ' ')}")
    system = by if isinstance(by, SystemActor) else None
    move = _Move(
        status=status, by=by, now=now, reason=text, batch=result.batch, data={**(data or {}), **({"by": system.name} if system else {})}
    )
    rights = None if system is not None else TriageRights.of(by)
    by_team: dict[int | None, list[int]] = {}
    with transaction.atomic():
        for chunk in chunks(sorted(set(ids))):
            rows = list(Finding.objects.filter(pk__in=chunk).select_for_update().order_by("id").values_list("id", "status", "team_id"))
            moving = [(pk, current) for pk, current, team_id in rows if _may_move(move, rights, result, by_team, pk, current, team_id)]
            if moving:
                move.apply(moving)
                result.changed.extend(pk for pk, _ in moving)
        audit_changes(
            action=AuditEvent.Action.STATUS_CHANGED,
            by=by,
            ip=ip,
            ids_by_team=by_team,
            summary=f"{{n}} finding{{s}} marked {status.replace('_', ' ')}",
            reason=text,
            details={"status": status, "batch": str(result.batch)},
        )
    return result


def _may_move(
    move: _Move,
    rights: TriageRights | None,
    result: BulkResult,
    by_team: dict[int | None, list[int]],
    pk: int,
    current: str,
    team_id: int | None,
) -> bool:
    """May this finding move (``rights`` None: a system actor that proved its right)?  Counts why not in ``result``,
    and the ones that move per team in ``by_team``."""
    status = move.status
    if rights is not None and not rights.may_triage(team_id):
        result.skip("you may not triage this team's findings")
    elif current == status:
        result.skip(f"already {status.replace('_', ' ')}")
    elif status not in TRANSITIONS[current]:
        result.skip(f"a {current.replace('_', ' ')} finding cannot become {status.replace('_', ' ')}")
    elif status == Status.OPEN and current not in ACTIVE_STATUSES and not move.reason:
        result.skip("reopening a closed finding needs a reason")
    else:
        by_team.setdefault(team_id, []).append(pk)
        return True
    return False


@dataclasses.dataclass
class _Move:
    """One status change by one actor, applied a chunk of (id, status before) at a time: a closed finding set
    back to open reopens (``reopen.findings_reopen``), the others just change status."""

    status: str
    by: Any
    now: dt.datetime
    reason: str
    batch: uuid.UUID
    data: dict[str, Any]

    def apply(self, moving: Sequence[tuple[int, str]]) -> None:
        reopening = [(pk, current) for pk, current in moving if self.status == Status.OPEN and current not in ACTIVE_STATUSES]
        closed = {pk for pk, _ in reopening}
        staying = [(pk, current) for pk, current in moving if pk not in closed]
        fields: dict[str, Any] = {"status": self.status, "status_changed_at": self.now}
        if self.status in (Status.FIXED, Status.OPEN):
            fields["fixed_at"] = self.now if self.status == Status.FIXED else None
        if staying:
            Finding.objects.filter(pk__in=[pk for pk, _ in staying]).update(**fields)
            events_write([self._event(pk, current) for pk, current in staying])
        detach_from_acceptances(ids=[pk for pk, current in moving if current == Status.RISK_ACCEPTED])
        if reopening:
            findings_reopen(
                rows=[Reopening(pk, current, self.now) for pk, current in reopening],
                by=self.by,
                reason=self.reason,
                type=FindingEvent.Type.STATUS,
                batch=self.batch,
                data=self.data,
            )

    def _event(self, pk: int, current: str) -> dict[str, Any]:
        return event_row(
            finding_id=pk,
            type=FindingEvent.Type.STATUS,
            by=self.by,
            now=self.now,
            reason=self.reason,
            from_status=current,
            to_status=self.status,
            batch=self.batch,
            data=self.data,
        )


# --- assignment and comments ------------------------------------------------------------------


def findings_assign(
    *,
    ids: Iterable[int],
    by: Any,
    assignee: User | None,
    reason: str = "",
    now: dt.datetime | None = None,
    batch: uuid.UUID | None = None,
) -> BulkResult:
    """Assign findings to a member of their team (None unassigns)."""
    now = now or timezone.now()
    text = clean_reason(reason, required=False)
    result = BulkResult(batch=batch or new_batch(), verb=f"assigned to {assignee}" if assignee else "unassigned")
    rights = TriageRights.of(by)
    assignee_teams: set[int] = set()
    assignee_staff = False
    if assignee is not None:
        assignee_staff = assignee.is_staff or assignee.is_superuser
        assignee_teams = set(Membership.objects.filter(user=assignee).values_list("team_id", flat=True))
    with transaction.atomic():
        for chunk in chunks(sorted(set(ids))):
            rows = list(Finding.objects.filter(pk__in=chunk).select_for_update().order_by("id").values_list("id", "assignee_id", "team_id"))
            moving: list[tuple[int, int | None]] = []
            for pk, current, team_id in rows:
                if not rights.may_triage(team_id):
                    result.skip("you may not triage this team's findings")
                elif assignee is not None and not assignee_staff and team_id not in assignee_teams:
                    result.skip(f"{assignee} is not a member of the finding's team")
                elif current == (assignee.pk if assignee else None):
                    result.skip("already assigned so")
                else:
                    moving.append((pk, current))
            if not moving:
                continue
            Finding.objects.filter(pk__in=[pk for pk, _ in moving]).update(assignee=assignee)
            to_id = assignee.pk if assignee else None
            events_write(
                [
                    event_row(
                        finding_id=pk,
                        type=FindingEvent.Type.ASSIGNED,
                        by=by,
                        now=now,
                        reason=text,
                        batch=result.batch,
                        data={"from_assignee": current, "to_assignee": to_id, "to_name": str(assignee) if assignee else ""},
                    )
                    for pk, current in moving
                ]
            )
            result.changed.extend(pk for pk, _ in moving)
    return result


def finding_comment(*, finding: Finding, by: Any, body: str, now: dt.datetime | None = None) -> Comment:
    text = (body or "").strip()
    if not text:
        raise ApplicationError("the comment is empty", code="empty_comment")
    if len(text) > 10000:
        raise ApplicationError("the comment is longer than 10000 characters", code="comment_too_long")
    if not may_triage(by, finding.team_id):
        raise ApplicationError("you may not comment on this team's findings", code="forbidden", status=403)
    return Comment.objects.create(
        finding=finding, author=person_of(by), author_label=actor_label(by), body=text, created_at=now or timezone.now()
    )
