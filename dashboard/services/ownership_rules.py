"""Changing ownership: rules created, changed and deleted (audited), re-assignment of the
findings a change affects (a Celery task, idempotent), and owners set by hand from the unowned queue.

Precedence and matching live in ``dashboard.services.ownership``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.db.update_values import bulk_update_rows
from dashboard.errors import ApplicationError
from dashboard.ingest.publish import TASKS, enqueue
from dashboard.models import AuditEvent, Finding, FindingEvent, Image, OwnershipRule, OwnerSource, Team
from dashboard.selectors.access import ensure_administrator
from dashboard.selectors.ownership import CompiledRule, Owner, RuleSet, decide_owner
from dashboard.services.audit import audit_record
from dashboard.services.finding_events import event_row, events_write
from dashboard.services.ownership import validate_pattern

#: The Celery task (dashboard/tasks.py) that re-applies rules after a change; takes the rule id.
REASSIGN_TASK = TASKS.REASSIGN_OWNERSHIP
BATCH = 1000


def _rule_snapshot(rule: OwnershipRule) -> dict[str, Any]:
    return {"kind": rule.kind, "pattern": rule.pattern, "team": rule.team.slug, "priority": rule.priority}


def _enqueue_reassign(rule_id: int) -> None:
    def publish() -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            ownership_reassign(rule_id=rule_id)
            return
        # By name: services never import tasks.  A failed publish leaves findings as they were; saving the rule again retries.
        enqueue(REASSIGN_TASK, [rule_id])

    transaction.on_commit(publish)


@transaction.atomic
def rule_create(
    *, team: Team, kind: str, pattern: str, priority: int = 0, note: str = "", by: Any = None, ip: str | None = None
) -> OwnershipRule:
    ensure_administrator(by, "create ownership rules")
    pattern = validate_pattern(kind=kind, pattern=pattern)
    existing = OwnershipRule.objects.filter(kind=kind, pattern=pattern).select_related("team").first()
    if existing is not None:
        raise ApplicationError(
            f"rule #{existing.pk} already maps {kind} {pattern} to {existing.team.slug}: change that rule instead",
            code="exists",
            status=409,
        )
    now = timezone.now()
    rule = OwnershipRule.objects.create(
        team=team,
        kind=kind,
        pattern=pattern,
        priority=priority,
        note=note[:500],
        created_by=by if getattr(by, "pk", None) else None,
        created_at=now,
        updated_at=now,
    )
    audit_record(
        action=AuditEvent.Action.RULE_CREATED,
        actor=by,
        ip=ip,
        team=team,
        target=rule,
        summary=f"ownership rule #{rule.pk}: {rule.get_kind_display()} {pattern} → {team.slug}",
        reason=note,
        details={"after": _rule_snapshot(rule)},
    )
    _enqueue_reassign(rule.pk)
    return rule


@transaction.atomic
def rule_update(
    *,
    rule: OwnershipRule,
    team: Team,
    kind: str,
    pattern: str,
    priority: int,
    note: str = "",
    by: Any = None,
    ip: str | None = None,
) -> OwnershipRule:
    ensure_administrator(by, "change ownership rules")
    pattern = validate_pattern(kind=kind, pattern=pattern)
    clash = OwnershipRule.objects.filter(kind=kind, pattern=pattern).exclude(pk=rule.pk).first()
    if clash is not None:
        raise ApplicationError(f"rule #{clash.pk} already maps {kind} {pattern}", code="exists", status=409)
    before = _rule_snapshot(rule)
    rule.team, rule.kind, rule.pattern, rule.priority, rule.note = team, kind, pattern, priority, note[:500]
    rule.updated_at = timezone.now()
    rule.save()
    after = _rule_snapshot(rule)
    if before != after:
        audit_record(
            action=AuditEvent.Action.RULE_CHANGED,
            actor=by,
            ip=ip,
            team=team,
            target=rule,
            summary=f"ownership rule #{rule.pk}: {rule.get_kind_display()} {pattern} → {team.slug}",
            reason=note,
            details={"before": before, "after": after},
        )
        _enqueue_reassign(rule.pk)
    return rule


@transaction.atomic
def rule_delete(*, rule: OwnershipRule, by: Any = None, ip: str | None = None, reason: str = "") -> None:
    ensure_administrator(by, "delete ownership rules")
    rule_id = rule.pk
    before = _rule_snapshot(rule)
    audit_record(
        action=AuditEvent.Action.RULE_DELETED,
        actor=by,
        ip=ip,
        team=rule.team,
        target=rule,
        summary=f"ownership rule #{rule_id} deleted: {rule.get_kind_display()} {rule.pattern} → {rule.team.slug}",
        reason=reason,
        details={"before": before},
    )
    rule.delete()  # findings it owned keep owner_source="rule" with owner_rule NULL: the task re-resolves them
    _enqueue_reassign(rule_id)


# --- re-assignment --------------------------------------------------------------------------


def _candidate_ids(rule: OwnershipRule | None, rule_id: int) -> set[int]:
    """Findings a change to this rule can affect: those it owned (or that lost it) and those it matches now."""
    ids = set(Finding.objects.filter(owner_rule_id=rule_id).values_list("id", flat=True))
    ids |= set(Finding.objects.filter(owner_source=OwnerSource.RULE, owner_rule__isnull=True).values_list("id", flat=True))
    if rule is None:
        return ids
    compiled = CompiledRule.compile(rule)
    reassignable = Finding.objects.exclude(owner_source__in=[OwnerSource.MANUAL, OwnerSource.NAMED])
    if rule.kind == OwnershipRule.Kind.NAMESPACE:
        namespaces = {ns for ns in Finding.objects.exclude(resource_namespace="").values_list("resource_namespace", flat=True).distinct()}
        hits = [ns for ns in namespaces if compiled.regex.match(ns)]
        for start in range(0, len(hits), BATCH):
            ids |= set(reassignable.filter(resource_namespace__in=hits[start : start + BATCH]).values_list("id", flat=True))
        return ids
    image_ids = [
        pk
        for pk, registry, repository, labels in Image.objects.values_list("id", "registry", "repository", "labels")
        if compiled.matches(image=f"{registry}/{repository}" if registry else repository, namespace="", labels=labels or {})
    ]
    for start in range(0, len(image_ids), BATCH):
        ids |= set(reassignable.filter(image_id__in=image_ids[start : start + BATCH]).values_list("id", flat=True))
    return ids


def _image_name(registry: str | None, repository: str | None) -> str:
    if not repository:
        return ""
    return f"{registry}/{repository}" if registry else repository


def ownership_reassign(*, rule_id: int) -> int:
    """Re-apply every rule to the findings a change of rule ``rule_id`` can affect.  Idempotent.

    Findings owned by hand or named by their report keep their team.  Returns how many findings
    changed team; records a finding event for each and one audit record for the run.
    """
    rule = OwnershipRule.objects.select_related("team").filter(pk=rule_id).first()
    rules = RuleSet.load()
    teams = {team.pk: team for team in Team.objects.all()}
    now = timezone.now()
    moves: Counter[tuple[str, str]] = Counter()
    ids = sorted(_candidate_ids(rule, rule_id))
    changed_total = 0
    for start in range(0, len(ids), BATCH):
        changed_total += _reassign_chunk(ids[start : start + BATCH], rules=rules, teams=teams, now=now, moves=moves)
    _reassign_images(rules)
    if changed_total:
        audit_record(
            action=AuditEvent.Action.OWNERSHIP_REASSIGNED,
            team=rule.team if rule is not None else None,
            target_type="ownershiprule",
            target_id=str(rule_id),
            summary=f"rule #{rule_id} changed: {changed_total} finding{'s' if changed_total != 1 else ''} re-assigned",
            details={"moves": [{"from": old, "to": new, "findings": n} for (old, new), n in sorted(moves.items())]},
        )
    return changed_total


def _reassign_chunk(chunk: list[int], *, rules: RuleSet, teams: dict[int, Team], now: dt.datetime, moves: Counter[tuple[str, str]]) -> int:
    """Re-apply the rules to these findings in one transaction; counts moves in ``moves``, returns how many moved."""
    with transaction.atomic():
        findings = list(
            Finding.objects.select_for_update(of=("self",))
            .filter(pk__in=chunk)
            .exclude(owner_source__in=[OwnerSource.MANUAL, OwnerSource.NAMED])
            .select_related("image", "last_report")
        )
        changed: list[Finding] = []
        events: list[dict[str, Any]] = []
        for finding in findings:
            owner = _owner_now(finding, rules=rules, teams=teams)
            new_team_id = owner.team.pk if owner.team else None
            new_rule_id = owner.rule.pk if owner.rule else None
            if (finding.team_id, finding.owner_rule_id, finding.owner_source) == (new_team_id, new_rule_id, owner.source):
                continue
            if finding.team_id != new_team_id:
                old = teams[finding.team_id].slug if finding.team_id in teams else "unowned"
                new = owner.team.slug if owner.team else "unowned"
                moves[(old, new)] += 1
                reason = f"{old} → {new}: {owner.reason}"[:2000]
                events.append(event_row(finding_id=finding.pk, type=FindingEvent.Type.OWNER, reason=reason, now=now))
            finding.team_id, finding.owner_rule_id = new_team_id, new_rule_id
            finding.owner_source, finding.owner_reason = owner.source, owner.reason[:300]
            changed.append(finding)
        bulk_update_rows(Finding, changed, ["team", "owner_rule", "owner_source", "owner_reason"], batch_size=BATCH)
        events_write(events)
    return len(events)


def _owner_now(finding: Finding, *, rules: RuleSet, teams: dict[int, Team]) -> Owner:
    """The owner the rules give this finding today (its report's team as the fallback)."""
    report = finding.last_report
    return decide_owner(
        rules=rules,
        image=_image_name(finding.image.registry, finding.image.repository) if finding.image else "",
        namespace=finding.resource_namespace,
        labels=(finding.image.labels or {}) if finding.image else {},
        report_team=teams.get(report.team_id) if report is not None and report.team_id else None,
        named=False,
    )


def _reassign_images(rules: RuleSet) -> None:
    """Images follow image and label rules (the team shown on the image page); unmatched images keep their team."""
    updates: dict[int, list[int]] = {}
    for pk, registry, repository, labels, team_id in Image.objects.values_list("id", "registry", "repository", "labels", "team_id"):
        hit = rules.first(image=_image_name(registry, repository), namespace="", labels=labels or {})
        if hit is not None and hit[0].rule.team_id != team_id:
            updates.setdefault(hit[0].rule.team_id, []).append(pk)
    for team_id, pks in updates.items():
        for start in range(0, len(pks), BATCH):
            Image.objects.filter(pk__in=pks[start : start + BATCH]).update(team_id=team_id)


# --- by hand: the unowned queue --------------------------------------------------------------


@transaction.atomic
def finding_set_owner(*, finding: Finding, team: Team | None, by: Any, ip: str | None = None, reason: str = "") -> Finding:
    """An administrator sets a finding's team by hand (sticky: rules no longer move it); None hands it back to the rules."""
    ensure_administrator(by, "set a finding's owner")
    locked = Finding.objects.select_for_update(of=("self",)).select_related("team", "image", "last_report__team").get(pk=finding.pk)
    old = locked.team.slug if locked.team else "unowned"
    if team is not None:
        locked.team, locked.owner_rule = team, None
        locked.owner_source = OwnerSource.MANUAL
        locked.owner_reason = f"set by {getattr(by, 'username', 'an administrator')}" + (f": {reason}" if reason else "")
    else:
        image = locked.image
        owner = decide_owner(
            rules=RuleSet.load(),
            image=image.name if image else "",
            namespace=locked.resource_namespace,
            labels=(image.labels or {}) if image else {},
            report_team=locked.last_report.team if locked.last_report else None,
            named=False,
        )
        locked.team, locked.owner_rule, locked.owner_source, locked.owner_reason = owner.team, owner.rule, owner.source, owner.reason[:300]
    locked.owner_reason = locked.owner_reason[:300]
    locked.save(update_fields=["team", "owner_rule", "owner_source", "owner_reason"])
    new = locked.team.slug if locked.team else "unowned"
    events_write(
        [
            event_row(
                finding_id=locked.pk,
                type=FindingEvent.Type.OWNER,
                by=by,
                reason=f"{old} → {new}: {locked.owner_reason}",
                now=timezone.now(),
            )
        ]
    )
    audit_record(
        action=AuditEvent.Action.OWNER_SET,
        actor=by,
        ip=ip,
        team=locked.team,
        target=locked,
        summary=f"finding #{locked.pk} {locked.rule_id}: {old} → {new}",
        reason=reason,
        details={"from": old, "to": new, "source": locked.owner_source},
    )
    return locked
