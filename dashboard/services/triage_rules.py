"""Auto-triage rules, and what triage does right after a report is applied.

``after_ingest`` runs inside the ingest transaction (claim.report_process) with the ids
of the findings the report created, reopened or changed: it restarts SLA clocks of
reopened findings (as configured), applies the teams' and global rules and scoped risk
acceptances to new and reopened findings, and re-scores everything it touched ("running" comes from
workload sightings, which re-score the findings of a newly sighted image themselves: services/running.py).
Every action a rule takes is a FindingEvent naming the rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, Finding, FindingEvent, Kind, RiskAcceptance, Severity, Status, Team, TriageRule
from dashboard.models.audit import AuditEvent
from dashboard.services import intel, risk_acceptance, triage
from dashboard.services.finding_events import event_row, events_write
from dashboard.services.triage import TriageRights, chunks

Action = TriageRule.Action
#: ``Finding.status_hint`` of a finding a CycloneDX VEX statement calls not affected (scanners/cyclonedx.py).
VEX_NOT_AFFECTED = "not_affected"
_ROW_FIELDS = (
    "id",
    "team_id",
    "status",
    "rule_id",
    "package_name",
    "package_path",
    "kind",
    "severity",
    "status_hint",
    "image__registry",
    "image__repository",
)


# --- managing rules -----------------------------------------------------------------------------


def rule_create(
    *,
    by: Any,
    team: Team | None,
    name: str,
    action: str,
    reason: str,
    match_rule_id: str = "",
    match_package: str = "",
    match_image: str = "",
    match_path: str = "",
    match_kind: str = "",
    accept_until: dt.date | None = None,
    severity: str = "",
    match_vex_not_affected: bool = False,
) -> TriageRule:
    """A rule for one team (its champion) or for every team (staff only)."""
    _ensure_may_create(by, team)
    if action not in Action.values:
        raise ApplicationError(f"unknown action {action!r}; use one of: {', '.join(Action.values)}", code="invalid_action")
    if not (name or "").strip():
        raise ApplicationError("a rule needs a name", code="name_required")
    _check_conditions(
        action=action, patterns=[match_rule_id, match_package, match_image, match_path], kind=match_kind, vex=match_vex_not_affected
    )
    accept_until, severity = _action_values(action, accept_until=accept_until, severity=severity)
    return TriageRule.objects.create(
        team=team,
        name=name.strip()[:200],
        match_rule_id=match_rule_id.strip()[:255],
        match_package=match_package.strip()[:255],
        match_image=match_image.strip()[:512],
        match_path=match_path.strip()[:1000],
        match_kind=match_kind,
        match_vex_not_affected=match_vex_not_affected,
        action=action,
        accept_until=accept_until,
        severity=severity,
        reason=triage.clean_reason(reason, required=True, what="a triage rule"),
        created_by=triage.person_of(by),
        created_at=timezone.now(),
    )


def _ensure_may_create(by: Any, team: Team | None) -> None:
    rights = TriageRights.of(by)
    if team is None and not rights.staff:
        raise ApplicationError("only administrators create rules for every team", code="forbidden", status=403)
    if team is not None and not rights.may_accept_risk(team.pk):
        raise ApplicationError("only the team's champion creates its triage rules", code="forbidden", status=403)


def _check_conditions(*, action: str, patterns: list[str], kind: str, vex: bool) -> None:
    """A rule matches on something, and only a false-positive rule applies VEX not_affected."""
    if vex and action != Action.FALSE_POSITIVE:
        raise ApplicationError("a rule applying VEX not_affected marks findings false positive", code="invalid_action")
    if not any(p.strip() for p in patterns) and not kind and not vex:
        raise ApplicationError("a rule needs at least one condition (rule id, package, image, path or kind)", code="no_condition")
    if kind and kind not in Kind.values:
        raise ApplicationError(f"unknown kind {kind!r}", code="invalid_kind")


def _action_values(action: str, *, accept_until: dt.date | None, severity: str) -> tuple[dt.date | None, str]:
    """``(accept_until, severity)`` as the action uses them: each required by its own action, blank for the others."""
    if action == Action.ACCEPT_RISK:
        accept_until = risk_acceptance.clean_expires(accept_until, today=timezone.localdate()) if accept_until else None
        if accept_until is None:
            raise ApplicationError("a rule that accepts risk needs a date until which it accepts", code="invalid_expiry")
    else:
        accept_until = None
    if action == Action.SET_SEVERITY:
        if severity not in Severity.values:
            raise ApplicationError(f"a severity rule needs one of: {', '.join(Severity.values)}", code="invalid_severity")
    else:
        severity = ""
    return accept_until, severity


def rule_set_enabled(*, rule: TriageRule, by: Any, enabled: bool) -> TriageRule:
    rights = TriageRights.of(by)
    allowed = rights.staff if rule.team_id is None else rights.may_accept_risk(rule.team_id)
    if not allowed:
        raise ApplicationError("you may not change this rule", code="forbidden", status=403)
    rule.enabled = enabled
    rule.save(update_fields=["enabled"])
    return rule


# --- matching -----------------------------------------------------------------------------------


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def rule_matches(rule: TriageRule, row: dict[str, Any]) -> bool:
    """Does the rule match a finding (values with rule_id, package_name, package_path, kind, image)?"""
    if rule.match_kind and row["kind"] != rule.match_kind:
        return False
    if rule.match_vex_not_affected and not (row["status_hint"] == VEX_NOT_AFFECTED and row.get("vex_justification")):
        return False
    checks = (
        (rule.match_rule_id, row["rule_id"]),
        (rule.match_package, row["package_name"]),
        (rule.match_image, row["image"]),
        (rule.match_path, row["package_path"]),
    )
    return all(not pattern or _glob(pattern, value or "") for pattern, value in checks)


def _rows(ids: Sequence[int]) -> list[dict[str, Any]]:
    rows = list(
        Finding.objects.filter(pk__in=ids)
        .order_by("id")
        .annotate(vex_justification=KT("details__vex_justification"))
        .values(*_ROW_FIELDS, "vex_justification")
    )
    for row in rows:
        repository, registry = row.pop("image__repository"), row.pop("image__registry")
        row["image"] = (f"{registry}/{repository}" if registry else repository) if repository else ""
    return rows


def _rules_for(team_ids: set[int]) -> list[TriageRule]:
    """Enabled rules of these teams first, then global rules, each in creation order."""
    rules = list(TriageRule.objects.filter(Q(team_id__in=team_ids) | Q(team__isnull=True), enabled=True).order_by("id"))
    return sorted(rules, key=lambda rule: (rule.team_id is None, rule.pk))


@dataclasses.dataclass
class RulesOutcome:
    false_positive: list[int] = dataclasses.field(default_factory=list)
    accepted: list[int] = dataclasses.field(default_factory=list)
    severity: list[int] = dataclasses.field(default_factory=list)


def rules_apply(*, ids: Sequence[int], now: dt.datetime, quiet_severity_ids: Sequence[int] = ()) -> RulesOutcome:
    """Apply enabled rules to these findings (those still needing work).

    ``quiet_severity_ids``: findings a newer report rewrote; a severity rule that already
    acted on them sets its severity again without a second event.
    """
    outcome = RulesOutcome()
    wanted, quiet = set(ids), set(quiet_severity_ids)
    if (not wanted and not quiet) or not TriageRule.objects.filter(enabled=True).exists():
        return outcome  # the common case: no rules, so no finding needs reading
    for chunk in chunks(sorted(wanted | quiet)):
        rows = [row for row in _rows(chunk) if row["status"] in ACTIVE_STATUSES]
        rules = _rules_for({row["team_id"] for row in rows if row["team_id"]})
        if not rules:
            continue
        status_plan: dict[int, list[dict[str, Any]]] = {}
        severity_plan: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            applicable = [rule for rule in rules if rule.team_id in (None, row["team_id"]) and rule_matches(rule, row)]
            severity_rule = next((r for r in applicable if r.action == Action.SET_SEVERITY), None)
            if severity_rule is not None and row["severity"] != severity_rule.severity:
                severity_plan.setdefault(severity_rule.pk, []).append(row)
            if row["id"] not in wanted:
                continue  # re-applying severity only
            status_rule = next((r for r in applicable if r.action in (Action.FALSE_POSITIVE, Action.ACCEPT_RISK)), None)
            if status_rule is not None:
                status_plan.setdefault(status_rule.pk, []).append(row)
        by_pk = {rule.pk: rule for rule in rules}
        for pk, planned in severity_plan.items():
            outcome.severity.extend(_set_severity(by_pk[pk], planned, now, quiet))
        for pk, planned in status_plan.items():
            rule = by_pk[pk]
            if rule.action == Action.FALSE_POSITIVE:
                outcome.false_positive.extend(_mark_false_positive(rule, planned, now))
            else:
                outcome.accepted.extend(_accept_by_rule(rule, planned, now))
    return outcome


def _rule_reason(rule: TriageRule, row: dict[str, Any] | None = None) -> str:
    if rule.match_vex_not_affected and row is not None:
        return f"rule #{rule.pk} {rule.name}: VEX not_affected, {row.get('vex_justification') or 'no justification'}"
    return f"rule #{rule.pk} {rule.name}: {rule.reason}"


def _set_severity(rule: TriageRule, rows: list[dict[str, Any]], now: dt.datetime, quiet: set[int]) -> list[int]:
    ids = [row["id"] for row in rows]
    Finding.objects.filter(pk__in=ids).update(severity=rule.severity)
    acted = set(
        FindingEvent.objects.filter(finding_id__in=ids, triage_rule=rule, type=FindingEvent.Type.SEVERITY).values_list(
            "finding_id", flat=True
        )
    )
    events_write(
        [
            event_row(
                finding_id=row["id"],
                type=FindingEvent.Type.SEVERITY,
                by=None,
                now=now,
                reason=_rule_reason(rule),
                data={"from": row["severity"], "to": rule.severity},
                rule_id=rule.pk,
            )
            for row in rows
            if not (row["id"] in quiet and row["id"] in acted)
        ]
    )
    return ids


def _by_team(rows: list[dict[str, Any]]) -> dict[int | None, list[int]]:
    grouped: dict[int | None, list[int]] = {}
    for row in rows:
        grouped.setdefault(row["team_id"], []).append(row["id"])
    return grouped


def _mark_false_positive(rule: TriageRule, rows: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    ids = [row["id"] for row in rows]
    Finding.objects.filter(pk__in=ids).update(status=Status.FALSE_POSITIVE, status_changed_at=now)
    events_write(
        [
            event_row(
                finding_id=row["id"],
                type=FindingEvent.Type.STATUS,
                by=None,
                now=now,
                reason=_rule_reason(rule, row),
                from_status=row["status"],
                to_status=Status.FALSE_POSITIVE,
                rule_id=rule.pk,
            )
            for row in rows
        ]
    )
    triage.audit_changes(
        action=AuditEvent.Action.STATUS_CHANGED,
        by=None,
        ip=None,
        ids_by_team=_by_team(rows),
        summary=f"rule #{rule.pk} marked {{n}} finding{{s}} false positive",
        reason=rule.reason,
    )
    return ids


def _accept_by_rule(rule: TriageRule, rows: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Findings join the rule's standing acceptance (one per rule and date), approved by the rule."""
    if rule.accept_until is None or rule.accept_until < timezone.localdate(now):
        return []
    ids = [row["id"] for row in rows]
    acceptance = RiskAcceptance.objects.filter(rule=rule, state=RiskAcceptance.State.APPROVED, expires=rule.accept_until).first()
    if acceptance is None:
        acceptance = RiskAcceptance.objects.create(
            team_id=rule.team_id,
            reason=_rule_reason(rule),
            requested_by_label=f"rule #{rule.pk} {rule.name}",
            state=RiskAcceptance.State.APPROVED,
            decided_at=now,
            expires=rule.accept_until,
            rule=rule,
            created_at=now,
        )
    risk_acceptance.attach(acceptance, ids)
    accepted = risk_acceptance.accept_findings(acceptance, ids, by=None, now=now, batch=None, rule_id=rule.pk)
    triage.audit_changes(
        action=AuditEvent.Action.RISK_ACCEPTED,
        by=None,
        ip=None,
        ids_by_team={rule.team_id: accepted},
        summary=f"rule #{rule.pk} accepted the risk of {{n}} finding{{s}} until {rule.accept_until.isoformat()}",
        reason=rule.reason,
    )
    return accepted


def rule_apply_existing(*, rule: TriageRule, by: Any) -> RulesOutcome:
    """Apply a rule now to the findings of its team(s) that need work (recorded as done by the rule)."""
    rights = TriageRights.of(by)
    if not (rights.staff if rule.team_id is None else rights.may_accept_risk(rule.team_id)):
        raise ApplicationError("you may not apply this rule", code="forbidden", status=403)
    scope = Finding.objects.filter(status__in=ACTIVE_STATUSES)
    if rule.team_id is not None:
        scope = scope.filter(team_id=rule.team_id)
    if rule.match_kind:
        scope = scope.filter(kind=rule.match_kind)
    ids = list(scope.order_by("id").values_list("id", flat=True))
    now = timezone.now()
    with transaction.atomic():
        outcome = rules_apply(ids=ids, now=now)
        intel.findings_rescore(ids=outcome.severity, today=now.date())
    return outcome


# --- the ingest hook ----------------------------------------------------------------------------


def after_ingest(*, new_ids: Sequence[int], reopened_ids: Sequence[int], changed_ids: Sequence[int], now: dt.datetime) -> RulesOutcome:
    """Triage what a report just created, reopened (reopen.findings_reopen) or changed.  Runs in the ingest transaction."""
    today = timezone.localdate(now)
    fresh = [*new_ids, *reopened_ids]
    outcome = rules_apply(ids=fresh, now=now, quiet_severity_ids=changed_ids)
    taken = set(outcome.false_positive) | set(outcome.accepted)
    remaining = [pk for pk in fresh if pk not in taken] if fresh and risk_acceptance.scoped_acceptances_exist(today=today) else []
    for chunk in chunks(remaining):
        outcome.accepted.extend(risk_acceptance.scoped_acceptances_apply(rows=_rows(chunk), now=now))
    # New findings were scored when they were inserted (ingest); re-score what changed since.
    intel.findings_rescore(ids=[*reopened_ids, *changed_ids, *outcome.severity], today=today)
    return outcome
