"""Reads of risk acceptances and triage rules, scoped to the teams the user may read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from dashboard.models import RiskAcceptance, Team, TriageRule
from dashboard.models.access import sees_everything, visible_teams
from dashboard.selectors.access import can_accept_risk


def acceptances_visible(*, user: Any, team: Team | None = None) -> QuerySet[RiskAcceptance]:
    qs = RiskAcceptance.objects.all()
    if team is not None:
        return qs.filter(team=team)
    if sees_everything(user):
        return qs
    return qs.filter(team__in=visible_teams(user))


def acceptance_list(*, user: Any, state: str = "") -> QuerySet[RiskAcceptance]:
    """Risk acceptances of the user's teams, newest first, with how many findings each covers."""
    qs = acceptances_visible(user=user).select_related("team", "requested_by", "approved_by", "rule").annotate(n=Count("findings"))
    if state in RiskAcceptance.State.values:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-id")


def acceptance_get(*, user: Any, pk: int) -> RiskAcceptance:
    acceptance = acceptances_visible(user=user).select_related("team", "requested_by").filter(pk=pk).first()
    if acceptance is None:
        raise Http404("no such risk acceptance")
    return acceptance


def rule_list(*, user: Any) -> QuerySet[TriageRule]:
    """Global rules and the rules of the user's teams."""
    qs = TriageRule.objects.select_related("team", "created_by").order_by("team__name", "id")
    if sees_everything(user):
        return qs
    return qs.filter(Q(team__isnull=True) | Q(team__in=visible_teams(user)))


def rule_get(*, user: Any, pk: int) -> TriageRule:
    rule = rule_list(user=user).filter(pk=pk).first()
    if rule is None:
        raise Http404("no such rule")
    return rule


def acceptances_decidable(*, user: Any, acceptances: Iterable[RiskAcceptance]) -> set[int]:
    """The ids of these acceptances ``user`` may approve or reject now: pending, asked by someone else, on a team
    whose risk the user may accept (acceptance_approve's own checks; the forms show only where they would work)."""
    me = getattr(user, "pk", None)
    may: dict[int | None, bool] = {}
    out: set[int] = set()
    for acceptance in acceptances:
        if acceptance.state != RiskAcceptance.State.PENDING or acceptance.requested_by_id == me:
            continue
        if acceptance.team_id not in may:
            may[acceptance.team_id] = can_accept_risk(user, acceptance.team)
        if may[acceptance.team_id]:
            out.add(acceptance.pk)
    return out
