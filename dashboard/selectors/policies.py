"""Reads for the policy pages: each team's policy, a policy's versions, and the decisions made, scoped by what the user may read."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Q, QuerySet

from dashboard.enforcement.decision import Policy
from dashboard.models import EnforcementPolicy, EnforcementPolicyVersion, GateDecision, Team
from dashboard.models.access import sees_everything, visible_teams
from dashboard.selectors.access import can_edit_policy
from dashboard.selectors.enforcement import policy_of


@dataclasses.dataclass(frozen=True)
class TeamPolicy:
    team: Team | None
    policy: Policy
    #: False: the team has no policy of its own and the organisation default decides.
    own: bool
    can_edit: bool


def policy_overview(*, user: Any) -> list[TeamPolicy]:
    """The organisation default, then every team the user may read with the policy that decides for it
    (two queries, and one per team for the right to edit)."""
    teams = list(visible_teams(user).order_by("name"))
    stored = EnforcementPolicy.objects.select_related("team").filter(Q(team__in=teams) | Q(team__isnull=True))
    rows = {row.team_id: row for row in stored}
    default = policy_of(rows.get(None))
    out = [TeamPolicy(team=None, policy=default, own=None in rows, can_edit=sees_everything(user))]
    for team in teams:
        row = rows.get(team.pk)
        policy = policy_of(row) if row else default
        out.append(TeamPolicy(team=team, policy=policy, own=row is not None, can_edit=can_edit_policy(user, team)))
    return out


def policy_versions(*, team: Team | None) -> QuerySet[EnforcementPolicyVersion]:
    """The versions of a team's policy (None: the organisation default), newest first."""
    lookup = {"policy__team__isnull": True} if team is None else {"policy__team": team}
    return EnforcementPolicyVersion.objects.filter(**lookup).select_related("created_by").order_by("-version")


def decision_list(*, user: Any, team: Team | None = None, limit: int = 50) -> QuerySet[GateDecision]:
    """Recent decisions under the policies of the teams the user may read (staff: all, the organisation default's too)."""
    qs = GateDecision.objects.select_related("team", "image").order_by("-created_at", "-id")
    if team is not None:
        qs = qs.filter(team=team)
    if not sees_everything(user):
        qs = qs.filter(team__in=visible_teams(user))
    return qs[:limit]
