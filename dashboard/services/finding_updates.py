"""What a person (or an admin token) asks for, on one finding or many: the entry point of forms and the API.

One finding (the finding page, ``PATCH /api/v1/findings/{id}/``): refusals are errors.
Many findings (bulk actions): refusals are counted per reason and reported back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import Finding, Status
from dashboard.services import risk_acceptance, triage
from dashboard.services.triage import TRANSITIONS, BulkResult, TriageRights

#: Bulk actions offered on the queue.
BULK_ACTIONS = ("assign", "status", "accept_risk", "false_positive")


def resolve_assignee(username: str | None) -> User | None:
    """The user named ``username`` ("" or None: nobody)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"no user {username!r}", code="unknown_user")
    return user  # type: ignore[return-value]


def parse_expires(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ApplicationError(f"expires {str(value)[:40]!r} is not a date (YYYY-MM-DD)", code="invalid_expiry") from None


def finding_update(
    *,
    finding: Finding,
    by: Any,
    status: str = "",
    reason: str = "",
    expires: dt.date | None = None,
    set_assignee: bool = False,
    assignee: str | None = None,
    comment: str = "",
    ip: str | None = None,
) -> Finding:
    """Change one finding's status (with reason, and expiry for risk_accepted), assignee and/or add a comment."""
    if expires is not None and status != Status.RISK_ACCEPTED:
        raise ApplicationError('"expires" goes with status "risk_accepted"', code="expires_without_acceptance")
    if not (status or set_assignee or comment.strip()):
        raise ApplicationError("nothing to change: give a status, an assignee or a comment", code="empty_update")
    rights = TriageRights.of(by)
    if not rights.may_triage(finding.team_id):
        raise ApplicationError("you may not triage this team's findings", code="forbidden", status=403)
    with transaction.atomic():
        current = Finding.objects.select_for_update().values_list("status", flat=True).get(pk=finding.pk)
        if status and status != current:
            _change_status(finding=finding, current=current, by=by, rights=rights, status=status, reason=reason, expires=expires, ip=ip)
        if set_assignee:
            result = triage.findings_assign(ids=[finding.pk], by=by, assignee=resolve_assignee(assignee), reason="")
            refused = [why for why in result.skipped if why != "already assigned so"]
            if refused:
                raise ApplicationError(f"cannot assign: {refused[0]}", code="cannot_assign")
        if comment.strip():
            triage.finding_comment(finding=finding, by=by, body=comment)
    finding.refresh_from_db()
    return finding


def _change_status(
    *, finding: Finding, current: str, by: Any, rights: TriageRights, status: str, reason: str, expires: dt.date | None, ip: str | None
) -> None:
    if status not in Status.values:
        raise ApplicationError(f"unknown status {status!r}; use one of: {', '.join(Status.values)}", code="invalid_status")
    if status not in TRANSITIONS[current]:
        raise ApplicationError(
            f"a {current.replace('_', ' ')} finding cannot become {status.replace('_', ' ')}", code="invalid_transition", status=409
        )
    if status == Status.RISK_ACCEPTED:
        if not rights.may_accept_risk(finding.team_id):
            raise ApplicationError("you may not accept risk for this team (champions do)", code="forbidden", status=403)
        risk_acceptance.acceptance_request(ids=[finding.pk], by=by, reason=reason, expires=expires, ip=ip)
        return
    result = triage.findings_set_status(ids=[finding.pk], by=by, status=status, reason=reason, ip=ip)
    if not result.changed:
        raise ApplicationError(f"cannot change the status: {next(iter(result.skipped), 'refused')}", code="invalid_transition", status=409)


def findings_bulk(
    *,
    ids: Iterable[int],
    by: Any,
    action: str,
    reason: str = "",
    status: str = "",
    assignee: str | None = None,
    expires: dt.date | None = None,
    ip: str | None = None,
) -> BulkResult:
    """One action, one reason, for every selected finding; what could not be done is counted, not fatal."""
    if action not in BULK_ACTIONS:
        raise ApplicationError(f"unknown bulk action {action!r}; use one of: {', '.join(BULK_ACTIONS)}", code="invalid_action")
    selected = sorted(set(ids))
    if not selected:
        raise ApplicationError("no findings selected", code="empty_selection")
    if len(selected) > settings.VIGIL_BULK_MAX:
        raise ApplicationError(
            f"{len(selected)} findings match; bulk actions take at most {settings.VIGIL_BULK_MAX}: narrow the filter",
            code="selection_too_large",
        )
    now = timezone.now()
    if action == "assign":
        return triage.findings_assign(ids=selected, by=by, assignee=resolve_assignee(assignee), reason=reason, now=now)
    if action == "accept_risk" or (action == "status" and status == Status.RISK_ACCEPTED):
        return risk_acceptance.acceptance_request(ids=selected, by=by, reason=reason, expires=expires, now=now, ip=ip)
    target = Status.FALSE_POSITIVE if action == "false_positive" else status
    if not target:
        raise ApplicationError("choose the status to set", code="status_required")
    return triage.findings_set_status(ids=selected, by=by, status=target, reason=reason, now=now, ip=ip)
