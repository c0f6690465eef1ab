"""Risk acceptance: a justification and an expiry, four-eyes approval when the team wants it.

An acceptance covers the findings it lists and, with a scope ("this CVE in every image
matching registry.example.com/payments/*"), the team's matching findings now and as they
appear at ingest.  At expiry the findings reopen (the SLA clock restarts as configured)
and the team's champions are told by email; every step is a FindingEvent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, Finding, FindingEvent, Membership, RiskAcceptance, Role, Status, Team
from dashboard.models.audit import AuditEvent
from dashboard.services import triage
from dashboard.services.audit import audit_record
from dashboard.services.finding_events import event_row, events_write, person_of
from dashboard.services.reopen import Reopening, findings_reopen
from dashboard.services.triage import BulkResult, TriageRights, actor_label, chunks

logger = logging.getLogger(__name__)

State = RiskAcceptance.State


@dataclasses.dataclass(frozen=True)
class Scope:
    """Which findings of a team an acceptance covers beyond its list; empty fields match anything."""

    rule_id: str = ""
    image_pattern: str = ""
    package: str = ""

    def matches(self, *, rule_id: str, image: str, package: str) -> bool:
        if not self.rule_id or rule_id.upper() != self.rule_id.upper():
            return False
        if self.image_pattern and not fnmatch.fnmatchcase(image, self.image_pattern):
            return False
        return not self.package or fnmatch.fnmatchcase(package, self.package)


def clean_expires(expires: dt.date | None, *, today: dt.date) -> dt.date:
    """The expiry: VIGIL_RISK_ACCEPTANCE_DAYS from today by default, after today, at most the maximum."""
    if expires is None:
        return today + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_DAYS)
    longest = today + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_MAX_DAYS)
    if expires <= today:
        raise ApplicationError("a risk acceptance must expire after today", code="invalid_expiry")
    if expires > longest:
        raise ApplicationError(
            f"a risk acceptance may last at most {settings.VIGIL_RISK_ACCEPTANCE_MAX_DAYS} days (until {longest.isoformat()})",
            code="invalid_expiry",
        )
    return expires


def _scope_matches(team_id: int, scope: Scope) -> list[int]:
    """Findings of the team that need work and match the scope (one query)."""
    rows = (
        Finding.objects.filter(team__pk=team_id, status__in=ACTIVE_STATUSES, rule_id__iexact=scope.rule_id)
        .values_list("id", "rule_id", "image__registry", "image__repository", "package_name")
        .order_by("id")
    )
    return [
        pk
        for pk, rule_id, registry, repository, package in rows
        if scope.matches(rule_id=rule_id, image=_image_name(registry, repository), package=package)
    ]


def _image_name(registry: str | None, repository: str | None) -> str:
    if not repository:
        return ""
    return f"{registry}/{repository}" if registry else repository


def acceptance_request(
    *,
    ids: Iterable[int],
    by: Any,
    reason: str,
    expires: dt.date | None = None,
    scope: Scope | None = None,
    team: Team | None = None,
    now: dt.datetime | None = None,
    batch: uuid.UUID | None = None,
    ip: str | None = None,
) -> BulkResult:
    """Accept the risk of these findings (one acceptance per team).

    Without four-eyes the findings are risk_accepted at once; with it the acceptance
    waits for a second person (``acceptance_approve``).  With a ``scope`` (and a
    ``team``) the team's matching findings are covered too, now and at ingest.
    """
    now = now or timezone.now()
    text = triage.clean_reason(reason, required=True, what="accepting risk")
    until = clean_expires(expires, today=timezone.localdate(now))
    result = BulkResult(batch=batch or triage.new_batch(), verb="risk accepted")
    rights = TriageRights.of(by)
    by_team = _by_team(ids=ids, scope=scope, team=team)
    teams: dict[int | None, Team] = {t.pk: t for t in Team.objects.filter(pk__in=[pk for pk in by_team if pk is not None])}
    scoped = scope is not None and bool(scope.rule_id)
    with transaction.atomic():
        for team_id, rows in by_team.items():
            if not rights.may_accept_risk(team_id):
                result.skip("you may not accept risk for this team", len(rows))
                continue
            eligible = [pk for pk, status in rows if status in ACTIVE_STATUSES]
            result.skip("not open, triaged or in progress", len(rows) - len(eligible))
            if not eligible and not scoped:
                continue
            acceptance = _create(
                team=teams.get(team_id) if team_id else None,
                ids=eligible,
                by=by,
                reason=text,
                expires=until,
                scope=scope if team is not None and team.pk == team_id else None,
                now=now,
            )
            _audit(acceptance, by=by, ip=ip, findings=eligible, what="requested" if acceptance.state == State.PENDING else "accepted")
            if acceptance.state == State.APPROVED:
                result.changed.extend(accept_findings(acceptance, eligible, by=by, now=now, batch=result.batch))
            else:
                result.pending_acceptances.append(acceptance.pk)
                _record_pending(acceptance, eligible, by=by, now=now, reason=text, batch=result.batch, until=until)
    return result


def _by_team(*, ids: Iterable[int], scope: Scope | None, team: Team | None) -> dict[int | None, list[tuple[int, str]]]:
    """The findings asked for (and, with a scope, the team's matching ones) as (id, status) per owning team."""
    wanted = set(ids)
    if scope is not None and scope.rule_id:
        if team is None:
            raise ApplicationError("a scoped risk acceptance needs a team", code="scope_needs_team")
        wanted.update(_scope_matches(team.pk, scope))
    by_team: dict[int | None, list[tuple[int, str]]] = {}
    for chunk in chunks(sorted(wanted)):
        for pk, status, owner_id in Finding.objects.filter(pk__in=chunk).order_by("id").values_list("id", "status", "team_id"):
            by_team.setdefault(owner_id, []).append((pk, status))
    if scope is not None and scope.rule_id and team is not None:
        by_team.setdefault(team.pk, [])
    return by_team


def _record_pending(
    acceptance: RiskAcceptance, ids: list[int], *, by: Any, now: dt.datetime, reason: str, batch: uuid.UUID, until: dt.date
) -> None:
    """An event on each finding of an acceptance waiting for its second person."""
    events_write(
        [
            event_row(
                finding_id=pk,
                type=FindingEvent.Type.ACCEPTANCE,
                by=by,
                now=now,
                reason=reason,
                batch=batch,
                data={"acceptance": acceptance.pk, "state": State.PENDING, "expires": until.isoformat()},
            )
            for pk in ids
        ]
    )


def _create(
    *,
    team: Team | None,
    ids: Sequence[int],
    by: Any,
    reason: str,
    expires: dt.date,
    scope: Scope | None,
    now: dt.datetime,
    rule_id: int | None = None,
) -> RiskAcceptance:
    four_eyes = team is not None and team.four_eyes and rule_id is None
    acceptance = RiskAcceptance.objects.create(
        team=team,
        scope_rule_id=scope.rule_id if scope else "",
        scope_image_pattern=scope.image_pattern if scope else "",
        scope_package=scope.package if scope else "",
        reason=reason,
        requested_by=person_of(by),
        requested_by_label=actor_label(by) if person_of(by) is None else "",
        approved_by=None if four_eyes else person_of(by),
        decided_at=None if four_eyes else now,
        state=State.PENDING if four_eyes else State.APPROVED,
        expires=expires,
        rule_id=rule_id,
        created_at=now,
    )
    attach(acceptance, ids)
    return acceptance


def attach(acceptance: RiskAcceptance, ids: Sequence[int]) -> None:
    through = RiskAcceptance.findings.through
    for chunk in chunks(list(ids)):
        through.objects.bulk_create([through(riskacceptance_id=acceptance.pk, finding_id=pk) for pk in chunk], ignore_conflicts=True)


def accept_findings(
    acceptance: RiskAcceptance, ids: Sequence[int], *, by: Any, now: dt.datetime, batch: uuid.UUID | None, rule_id: int | None = None
) -> list[int]:
    """Move the findings that still need work to risk_accepted, one event each."""
    accepted: list[int] = []
    data = {"acceptance": acceptance.pk, "expires": acceptance.expires.isoformat(), "requested_by": acceptance.requester_name}
    if acceptance.approved_by_id:
        data["approved_by"] = str(acceptance.approved_by)
    for chunk in chunks(sorted(ids)):
        rows = list(Finding.objects.filter(pk__in=chunk, status__in=ACTIVE_STATUSES).select_for_update().values_list("id", "status"))
        if not rows:
            continue
        Finding.objects.filter(pk__in=[pk for pk, _ in rows]).update(status=Status.RISK_ACCEPTED, status_changed_at=now)
        events_write(
            [
                event_row(
                    finding_id=pk,
                    type=FindingEvent.Type.STATUS,
                    by=by,
                    now=now,
                    reason=acceptance.reason,
                    from_status=status,
                    to_status=Status.RISK_ACCEPTED,
                    batch=batch,
                    data=data,
                    rule_id=rule_id,
                )
                for pk, status in rows
            ]
        )
        accepted.extend(pk for pk, _ in rows)
    return accepted


def _audit(acceptance: RiskAcceptance, *, by: Any, ip: str | None, findings: Sequence[int], what: str, reason: str = "") -> None:
    count = len(findings)
    plural = "s" if count != 1 else ""
    audit_record(
        action=AuditEvent.Action.RISK_ACCEPTED,
        summary=f"risk acceptance #{acceptance.pk} {what}: {count} finding{plural} until {acceptance.expires.isoformat()}",
        actor=by,
        ip=ip,
        team=acceptance.team,
        target=acceptance,
        reason=reason or acceptance.reason,
        details={"state": acceptance.state, "requested_by": acceptance.requester_name, "findings": list(findings)[:1000], "count": count},
    )


def _locked(acceptance: RiskAcceptance) -> RiskAcceptance:
    return RiskAcceptance.objects.select_for_update(of=("self",)).select_related("team", "requested_by").get(pk=acceptance.pk)


def acceptance_approve(
    *, acceptance: RiskAcceptance, by: Any, reason: str = "", now: dt.datetime | None = None, ip: str | None = None
) -> BulkResult:
    """A second person approves a pending acceptance: its findings become risk_accepted."""
    now = now or timezone.now()
    approver = person_of(by)
    if approver is None:
        raise ApplicationError("a person must approve a risk acceptance, not a token", code="person_required", status=403)
    with transaction.atomic():
        locked = _locked(acceptance)
        if locked.state != State.PENDING:
            raise ApplicationError(
                f"risk acceptance #{locked.pk} is {locked.state}, not waiting for approval", code="not_pending", status=409
            )
        if locked.requested_by_id == approver.pk:
            raise ApplicationError(
                "four-eyes: a second person, not the requester, must approve this risk acceptance", code="four_eyes", status=403
            )
        if not TriageRights.of(by).may_accept_risk(locked.team_id):
            raise ApplicationError("you may not accept risk for this team", code="forbidden", status=403)
        if locked.expires < timezone.localdate(now):
            raise ApplicationError("this request expired before it was approved: request it again", code="expired", status=409)
        locked.state = State.APPROVED
        locked.approved_by = approver
        locked.decided_at = now
        locked.decision_reason = triage.clean_reason(reason, required=False)
        locked.save(update_fields=["state", "approved_by", "decided_at", "decision_reason"])
        ids = list(locked.findings.values_list("id", flat=True))
        if locked.has_scope and locked.team_id is not None:
            ids.extend(_scope_matches(locked.team_id, _scope_of(locked)))
            attach(locked, ids)
        result = BulkResult(batch=triage.new_batch(), verb="risk accepted")
        result.changed = accept_findings(locked, ids, by=by, now=now, batch=result.batch)
        _audit(locked, by=by, ip=ip, findings=result.changed, what="approved")
    return result


def acceptance_reject(
    *, acceptance: RiskAcceptance, by: Any, reason: str, now: dt.datetime | None = None, ip: str | None = None
) -> RiskAcceptance:
    """Turn down a pending acceptance (or withdraw one's own request); the findings keep their status."""
    now = now or timezone.now()
    person = person_of(by)
    text = triage.clean_reason(reason, required=True, what="rejecting a risk acceptance")
    with transaction.atomic():
        locked = _locked(acceptance)
        if locked.state != State.PENDING:
            raise ApplicationError(
                f"risk acceptance #{locked.pk} is {locked.state}, not waiting for approval", code="not_pending", status=409
            )
        own = person is not None and locked.requested_by_id == person.pk
        if not own and not TriageRights.of(by).may_accept_risk(locked.team_id):
            raise ApplicationError("you may not decide risk acceptances for this team", code="forbidden", status=403)
        locked.state = State.REJECTED
        locked.approved_by = None
        locked.decided_at = now
        locked.decision_reason = text
        locked.save(update_fields=["state", "approved_by", "decided_at", "decision_reason"])
        verb = "withdrawn" if own else "rejected"
        events_write(
            [
                event_row(
                    finding_id=pk,
                    type=FindingEvent.Type.ACCEPTANCE,
                    by=by,
                    now=now,
                    reason=f"risk acceptance #{locked.pk} {verb}: {text}",
                    data={"acceptance": locked.pk, "state": State.REJECTED},
                )
                for pk in locked.findings.values_list("id", flat=True)
            ]
        )
        _audit(locked, by=by, ip=ip, findings=list(locked.findings.values_list("id", flat=True)), what=verb, reason=text)
    return locked


def _scope_of(acceptance: RiskAcceptance) -> Scope:
    return Scope(rule_id=acceptance.scope_rule_id, image_pattern=acceptance.scope_image_pattern, package=acceptance.scope_package)


# --- expiry -------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExpiryResult:
    expired: list[int]
    reopened: list[int]


def acceptances_expire(*, now: dt.datetime | None = None) -> ExpiryResult:
    """Expire acceptances past their date; their findings reopen and the champions are told.  Idempotent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    result = ExpiryResult(expired=[], reopened=[])
    due = list(
        RiskAcceptance.objects.filter(state__in=[State.APPROVED, State.PENDING], expires__lt=today)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for pk in due:
        with transaction.atomic():
            acceptance = RiskAcceptance.objects.select_for_update(of=("self",)).select_related("team", "requested_by").filter(pk=pk).first()
            if acceptance is None or acceptance.state not in (State.APPROVED, State.PENDING) or acceptance.expires >= today:
                continue  # a concurrent run got here first
            was_approved = acceptance.state == State.APPROVED
            acceptance.state = State.EXPIRED
            acceptance.save(update_fields=["state"])
            reopened = _reopen_expired(acceptance, now=now, today=today) if was_approved else []
            result.expired.append(acceptance.pk)
            result.reopened.extend(reopened)
        if was_approved:
            _notify_expired(acceptance, reopened)
    return result


def _reopen_expired(acceptance: RiskAcceptance, *, now: dt.datetime, today: dt.date) -> list[int]:
    covered_elsewhere = RiskAcceptance.findings.through.objects.filter(
        riskacceptance__state=State.APPROVED, riskacceptance__expires__gte=today
    ).exclude(riskacceptance_id=acceptance.pk)
    rows = list(
        acceptance.findings.filter(status=Status.RISK_ACCEPTED)
        .exclude(pk__in=covered_elsewhere.values("finding_id"))
        .select_for_update()
        .values_list("id", flat=True)
    )
    findings_reopen(
        rows=[Reopening(pk, Status.RISK_ACCEPTED, now) for pk in rows],
        reason=f"risk acceptance #{acceptance.pk} expired on {acceptance.expires.isoformat()}",
        data={"acceptance": acceptance.pk},
    )
    triage.audit_changes(
        action=AuditEvent.Action.STATUS_CHANGED,
        by=None,
        ip=None,
        ids_by_team={acceptance.team_id: rows},
        summary=f"risk acceptance #{acceptance.pk} expired: {{n}} finding{{s}} reopened",
        reason=acceptance.reason,
    )
    return rows


def _notify_expired(acceptance: RiskAcceptance, reopened: Sequence[int]) -> None:
    """Email the team's champions (and the requester) that an acceptance expired."""
    emails: set[str] = set()
    if acceptance.team_id:
        emails.update(
            Membership.objects.filter(team_id=acceptance.team_id, role=Role.CHAMPION)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    if acceptance.requested_by_id and acceptance.requested_by and acceptance.requested_by.email:
        emails.add(acceptance.requested_by.email)
    if not emails:
        return
    team = acceptance.team.name if acceptance.team else "unowned findings"
    base = getattr(settings, "VIGIL_BASE_URL", "").rstrip("/")
    count = len(reopened)
    body = (
        f"Risk acceptance #{acceptance.pk} for {team} expired on {acceptance.expires.isoformat()}.\n"
        f"{count} finding{'s' if count != 1 else ''} reopened and need{'s' if count == 1 else ''} a decision again.\n\n"
        f"Reason given: {acceptance.reason}\n\n"
        f"The findings: {base}/findings/?acceptance={acceptance.pk}&status=active\n"
    )
    try:
        send_mail(
            subject=f"[Vigil] Risk acceptance #{acceptance.pk} for {team} expired: {count} finding{'s' if count != 1 else ''} reopened",
            message=body,
            from_email=None,
            recipient_list=sorted(emails),
        )
    except Exception:  # the expiry is done and recorded; a mail server being down must not undo it
        logger.warning("could not email the expiry of risk acceptance %s", acceptance.pk, exc_info=True)


# --- at ingest: scoped acceptances cover new findings ------------------------------------------------


def scoped_acceptances_exist(*, today: dt.date) -> bool:
    """Is any approved scoped acceptance in force (if not, new findings need no check)?"""
    return RiskAcceptance.objects.filter(state=State.APPROVED, expires__gte=today).exclude(scope_rule_id="").exists()


def scoped_acceptances_apply(*, rows: Sequence[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Accept new or reopened findings that an approved scoped acceptance of their team covers.

    ``rows`` are finding values with id, team_id, status, rule_id, image name and package_name.
    """
    today = timezone.localdate(now)
    team_ids = {row["team_id"] for row in rows if row["team_id"] and row["status"] in ACTIVE_STATUSES}
    if not team_ids:
        return []
    scoped = list(
        RiskAcceptance.objects.filter(team_id__in=team_ids, state=State.APPROVED, expires__gte=today)
        .exclude(scope_rule_id="")
        .select_related("approved_by")
        .order_by("id")
    )
    accepted: list[int] = []
    for acceptance in scoped:
        scope = _scope_of(acceptance)
        ids = [
            row["id"]
            for row in rows
            if row["team_id"] == acceptance.team_id
            and row["status"] in ACTIVE_STATUSES
            and row["id"] not in accepted
            and scope.matches(rule_id=row["rule_id"], image=row["image"], package=row["package_name"])
        ]
        if not ids:
            continue
        attach(acceptance, ids)
        accepted.extend(accept_findings(acceptance, ids, by=None, now=now, batch=None))
    return accepted
