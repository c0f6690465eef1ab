"""Reads of the audit log: administrators read everything, managers the records of the teams granted to them."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import QuerySet

from dashboard.models import AuditEvent
from dashboard.selectors.access import audit_teams, can_view_audit


@dataclasses.dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    team: str = ""
    actor: str = ""
    target: str = ""

    @classmethod
    def from_query(cls, params: Any) -> AuditFilters:
        def pick(name: str) -> str:
            return (params.get(name) or "").strip()[:100]

        action = pick("action")
        return cls(
            action=action if action in AuditEvent.Action.values or action.endswith(".") else "",
            team=pick("team"),
            actor=pick("actor"),
            target=pick("target"),
        )


def audit_list(*, user: Any, filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    if not can_view_audit(user):
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.all()
    teams = audit_teams(user)
    if teams is not None:
        qs = qs.filter(team_id__in=teams.values("pk"))
    filters = filters or AuditFilters()
    if filters.action.endswith("."):
        qs = qs.filter(action__startswith=filters.action)
    elif filters.action:
        qs = qs.filter(action=filters.action)
    if filters.team:
        qs = qs.filter(team_slug=filters.team)
    if filters.actor:
        qs = qs.filter(actor_label__icontains=filters.actor)
    if filters.target:
        kind, _, ident = filters.target.partition(":")
        qs = qs.filter(target_type=kind, target_id=ident) if ident else qs.filter(target_type=kind)
    return qs.order_by("-created_at", "-id")
