"""Who may do what.  Deny by default: an action is allowed only where a line below says so.

Reading is decided by one rule, ``Finding.objects.visible_to(user)`` (dashboard/models/access.py):
objects of teams you cannot read answer 404, like objects that do not exist.  Actions on
what you can read are decided here, per team:

| who                                   | triage (status, assign, false positive) | accept risk |
|---------------------------------------|-----------------------------------------|-------------|
| staff administrator                   | every team, unowned findings too         | yes         |
| champion of the team                  | yes                                      | yes         |
| member of the team                    | yes                                      | no          |
| manager of the team (a read grant)    | only with the triage grant               | only with the triage grant |
| admin-scope token covering the team   | yes                                      | yes         |
| read or ingest token, anyone else     | no                                       | no          |

The triage grant is ``Membership.can_triage`` on a manager's membership.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from dashboard.actors import SystemActor
from dashboard.errors import ApplicationError
from dashboard.models import Membership, Role, Team, TokenScope
from dashboard.models.access import sees_everything, visible_teams

TRIAGE = "triage"
ACCEPT_RISK = "accept_risk"

#: What each role may do on its own team, before grants.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    Role.CHAMPION: frozenset({TRIAGE, ACCEPT_RISK}),
    Role.MEMBER: frozenset({TRIAGE}),
    Role.MANAGER: frozenset(),
}
#: What a manager's triage grant adds.
GRANT_ACTIONS = frozenset({TRIAGE, ACCEPT_RISK})
#: What tokens may do on the teams they cover, by scope.
TOKEN_ACTIONS: dict[str, frozenset[str]] = {
    TokenScope.ADMIN: frozenset({TRIAGE, ACCEPT_RISK}),
    TokenScope.READ: frozenset(),
    TokenScope.INGEST: frozenset(),
}


def _authenticated(user: Any) -> bool:
    return user is not None and bool(getattr(user, "is_authenticated", False))


def team_actions(user: Any, team: Team | None) -> frozenset[str]:
    """Every action ``user`` may take on findings of ``team`` (None: the unowned queue)."""
    if not _authenticated(user):
        return frozenset()
    token = getattr(user, "api_token", None)
    if token is not None:
        if team is None or team.pk not in token.team_ids():
            return frozenset()
        return TOKEN_ACTIONS.get(token.scope, frozenset())
    if sees_everything(user):
        return frozenset({TRIAGE, ACCEPT_RISK})
    if team is None:
        return frozenset()
    membership = Membership.objects.filter(user=user, team=team).only("role", "can_triage").first()
    if membership is None:
        return frozenset()
    actions = ROLE_ACTIONS.get(membership.role, frozenset())
    if membership.role == Role.MANAGER and membership.can_triage:
        actions = actions | GRANT_ACTIONS
    return actions


def can_triage_somewhere(user: Any) -> bool:
    """May this person triage findings of at least one team (so the queue offers its bulk form)?"""
    if not _authenticated(user) or getattr(user, "api_token", None) is not None:
        return False
    if sees_everything(user):
        return True
    roles = [role for role, actions in ROLE_ACTIONS.items() if TRIAGE in actions]
    granted = Q(role__in=roles) | (Q(role=Role.MANAGER, can_triage=True) if TRIAGE in GRANT_ACTIONS else Q(pk__in=[]))
    return Membership.objects.filter(granted, user=user).exists()


def can_view_team(user: Any, team: Team | None) -> bool:
    if team is None:
        return sees_everything(user)
    return visible_teams(user).filter(pk=team.pk).exists()


def can_triage(user: Any, team: Team | None) -> bool:
    """Change status, assign, mark false positive or duplicate on findings of ``team``."""
    return TRIAGE in team_actions(user, team)


def can_accept_risk(user: Any, team: Team | None) -> bool:
    """Accept (or approve accepting) the risk of findings of ``team``: not for members."""
    return ACCEPT_RISK in team_actions(user, team)


def ensure_can(user: Any, team: Team | None, action: str) -> None:
    """Raise a 403 ApplicationError unless ``user`` may take ``action`` on ``team``.

    Call it only on objects the user can read (they got it from a ``visible_to`` queryset);
    unreadable objects must answer 404 before this.
    """
    if action not in team_actions(user, team):
        words = {TRIAGE: "triage", ACCEPT_RISK: "accept the risk of"}.get(action, action)
        where = f"team {team.slug}" if team is not None else "unowned findings"
        raise ApplicationError(f"you may not {words} findings of {where}", code="forbidden", status=403)


def can_edit_policy(user: Any, team: Team | None) -> bool:
    """Change a team's enforcement policy: its team admins (champion, a manager with the triage grant, an admin-scope
    token covering it) and staff; the organisation default (``team=None``): staff only."""
    if team is None:
        return sees_everything(user)
    return ACCEPT_RISK in team_actions(user, team)


def can_manage_ownership(user: Any) -> bool:
    """Create, change and delete ownership rules, assign owners by hand: administrators only."""
    return sees_everything(user)


def can_view_audit(user: Any) -> bool:
    """The audit page: administrators (everything) and managers (the teams granted to them)."""
    if not _authenticated(user) or getattr(user, "api_token", None) is not None:
        return False
    return sees_everything(user) or Membership.objects.filter(user=user, role=Role.MANAGER).exists()


def audit_teams(user: Any) -> QuerySet[Team] | None:
    """The teams whose audit records ``user`` may read; None means every record (administrators)."""
    if sees_everything(user):
        return None
    return Team.objects.filter(pk__in=Membership.objects.filter(user=user, role=Role.MANAGER).values("team_id"))


def triage_team_ids(user: Any) -> set[int] | None:
    """The teams whose findings ``user`` may triage, in one query; None means every team (administrators)."""
    if sees_everything(user):
        return None
    if not _authenticated(user) or getattr(user, "api_token", None) is not None:
        return set()
    roles = [role for role, actions in ROLE_ACTIONS.items() if TRIAGE in actions]
    granted = Q(role__in=roles) | Q(role=Role.MANAGER, can_triage=True)
    return set(Membership.objects.filter(granted, user=user).values_list("team_id", flat=True))


def ensure_administrator(by: Any, what: str) -> None:
    """Raise a 403 ApplicationError unless ``by`` is a staff administrator.  ``by`` None is an operator at the
    command line (management commands), who has the database anyway; a ``SystemActor`` is Vigil applying
    rules an operator configured (single sign-on's group mapping), audited by name."""
    if by is not None and not isinstance(by, SystemActor) and not sees_everything(by):
        raise ApplicationError(f"only administrators may {what}", code="forbidden", status=403)
