"""Changing an enforcement policy: who may, what is valid, a new version for every change, and the audit record."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from dashboard.enforcement.decision import MODES, OUTCOMES, SEVERITIES
from dashboard.errors import ApplicationError
from dashboard.models import POLICY_FIELDS, AuditEvent, EnforcementPolicy, EnforcementPolicyVersion, Team
from dashboard.selectors.access import can_edit_policy
from dashboard.selectors.enforcement import policy_for, policy_values
from dashboard.services.audit import actor_label, audit_record

MAX_RULE_IDS = 200
MAX_NAMESPACE_MODES = 100


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(f"{field}: {message}", code="invalid", extra={field: [message]})


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _invalid(field, f"must be one of {', '.join(repr(item) for item in allowed if item)}")
    return value


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(field, "must be true or false")
    return value


def _epss(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise _invalid("epss_min", "must be a probability between 0 and 1, or null to turn the rule off")
    return float(value)


def _rule_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() and len(item) <= 255 for item in value):
        raise _invalid("rule_ids", "must be a list of rule ids (non-empty text of at most 255 characters)")
    if len(value) > MAX_RULE_IDS:
        raise _invalid("rule_ids", f"at most {MAX_RULE_IDS} rule ids")
    return list(dict.fromkeys(item.strip() for item in value))


def _namespace_modes(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or len(value) > MAX_NAMESPACE_MODES:
        raise _invalid("namespace_modes", f'must be an object of at most {MAX_NAMESPACE_MODES} "namespace": "mode" pairs')
    out: dict[str, str] = {}
    for pattern, mode in value.items():
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 253:
            raise _invalid("namespace_modes", "a namespace (or pattern) must be non-empty text of at most 253 characters")
        out[pattern.strip()] = _choice(f"namespace_modes[{pattern}]", mode, MODES)
    return out


def policy_clean(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validated rule fields from a partial change; unknown fields are refused (400), never ignored."""
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise ApplicationError(f"unknown policy fields: {', '.join(unknown)}; known: {', '.join(POLICY_FIELDS)}", code="invalid")
    cleaners = {
        "mode": lambda value: _choice("mode", value, MODES),
        "namespace_modes": _namespace_modes,
        "min_severity": lambda value: _choice("min_severity", value, ("", *SEVERITIES)),
        "fix_required": lambda value: _boolean("fix_required", value),
        "kev": lambda value: _boolean("kev", value),
        "epss_min": _epss,
        "sla_overdue": lambda value: _boolean("sla_overdue", value),
        "secrets": lambda value: _boolean("secrets", value),
        "rule_ids": _rule_ids,
        "unknown_image": lambda value: _choice("unknown_image", value, OUTCOMES),
    }
    return {name: cleaners[name](value) for name, value in changes.items()}


def _starting_point(team: Team | None) -> EnforcementPolicy:
    """A team's first policy starts from the organisation default (as it is now); the default from the built-in one."""
    values = policy_values(policy_for(team_id=None))
    return EnforcementPolicy(team=team, version=0, updated_at=timezone.now(), **values)


@transaction.atomic
def policy_update(*, team: Team | None, by: Any, changes: Mapping[str, Any], reason: str = "", ip: str | None = None) -> EnforcementPolicy:
    """Change some rules of ``team``'s policy (``None``: the organisation default).

    Every change that changes something is a new version (with every rule as it now is) and an audit record;
    a change that changes nothing is no new version.  Team admins only (``can_edit_policy``).
    """
    if not can_edit_policy(by, team):
        where = f"team {team.slug}" if team is not None else "the organisation"
        raise ApplicationError(f"you may not change the enforcement policy of {where}", code="forbidden", status=403)
    values = policy_clean(changes)
    lookup = {"team__isnull": True} if team is None else {"team": team}
    policy = EnforcementPolicy.objects.select_for_update().filter(**lookup).first() or _starting_point(team)
    before = policy.rule_values()
    for name, value in values.items():
        setattr(policy, name, value)
    changed = [name for name in POLICY_FIELDS if policy.rule_values()[name] != before[name]]
    if not changed and policy.pk is not None:
        return policy
    now = timezone.now()
    label = actor_label(by)[:255]
    policy.version += 1
    policy.updated_at = now
    policy.updated_by_label = label
    policy.save()
    person = by if getattr(by, "api_token", None) is None and getattr(by, "is_authenticated", False) else None
    EnforcementPolicyVersion.objects.create(
        policy=policy,
        version=policy.version,
        values=policy.rule_values(),
        changed=changed,
        reason=reason,
        created_at=now,
        created_by=person,
        created_by_label=label,
    )
    after = policy.rule_values()
    where = team.slug if team is not None else "the organisation default"
    summary = f"enforcement policy of {where} v{policy.version}: " + ", ".join(f"{name}={after[name]!r}" for name in changed)
    audit_record(
        action=AuditEvent.Action.POLICY_CHANGED,
        actor=by,
        ip=ip,
        team=team,
        target=policy,
        summary=summary,
        reason=reason,
        details={
            "version": policy.version,
            "before": {name: before[name] for name in changed},
            "after": {name: after[name] for name in changed},
        },
    )
    return policy
