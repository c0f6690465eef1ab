"""The one access rule: which teams a person or a token may read.

- anonymous: none;
- an API token: its team and, for an integration token, the extra teams it covers;
- staff and superusers: every team, and unowned findings;
- everyone else: the teams they have a membership of, in any role (champion, member, or
  manager: a manager's membership of a team *is* the grant to read it).

``Finding.objects.visible_to(user)`` and every selector are built on ``visible_teams``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from dashboard.models.teams import Membership, Team


def sees_everything(user: Any) -> bool:
    """Staff people (never tokens) read every team and the unowned queue."""
    if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "api_token", None) is not None:
        return False
    return bool(user.is_staff or user.is_superuser)


def visible_teams(user: Any) -> QuerySet[Team]:
    if user is None or not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    token = getattr(user, "api_token", None)
    if token is not None:
        return Team.objects.filter(pk__in=token.team_ids())
    if sees_everything(user):
        return Team.objects.all()
    return Team.objects.filter(pk__in=Membership.objects.filter(user=user).values("team_id"))


def visible_team_filter(user: Any) -> dict[str, Any] | None:
    """Filter kwargs on a ``team`` foreign key for this user; None means "no restriction" (staff)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"team_id__in": []}
    if sees_everything(user):
        return None
    token = getattr(user, "api_token", None)
    if token is not None:
        return {"team_id__in": sorted(token.team_ids())}
    return {"team_id__in": Membership.objects.filter(user=user).values("team_id")}
