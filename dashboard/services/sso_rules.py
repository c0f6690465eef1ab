"""The rules that map identity-provider groups to Vigil teams and roles (pure Python, read at start-up).

``VIGIL_SSO_RULES`` is a JSON list of rules::

    [{"group": "payments-champions", "team": "payments", "role": "champion"},
     {"group": "payments-devs", "team": "payments", "role": "member"},
     {"group": "eng-leads", "team": "payments", "role": "manager", "can_triage": true},
     {"group": "secops", "role": "admin"}]

A person's memberships of every team named by a rule follow their groups at each login;
teams no rule names are left to administrators.  ``admin`` (no team) makes a staff
administrator; when any rule names it, the staff flag of single sign-on users follows it too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

ADMIN = "admin"
TEAM_ROLES = ("champion", "member", "manager")
#: When several rules give one team, the one that allows the most wins.
RANK = {
    ("champion", False): 4,
    ("champion", True): 4,
    ("manager", True): 3,
    ("member", False): 2,
    ("member", True): 2,
    ("manager", False): 1,
}


class RuleError(ValueError):
    """``VIGIL_SSO_RULES`` cannot be read: the message says which rule and why."""


@dataclasses.dataclass(frozen=True)
class Rule:
    group: str
    role: str
    team: str = ""
    can_triage: bool = False


@dataclasses.dataclass(frozen=True)
class Grant:
    role: str
    can_triage: bool


def parse_rules(raw: str) -> tuple[Rule, ...]:
    """Rules from their JSON text; a mistake is refused at start-up rather than silently granting nothing."""
    try:
        items = json.loads(raw or "[]")
    except json.JSONDecodeError as error:
        raise RuleError(f"VIGIL_SSO_RULES is not JSON: {error}") from error
    if not isinstance(items, list):
        raise RuleError("VIGIL_SSO_RULES must be a JSON list of rules")
    return tuple(_rule(index, item) for index, item in enumerate(items))


def _rule(index: int, item: Any) -> Rule:
    where = f"VIGIL_SSO_RULES[{index}]"
    if not isinstance(item, dict) or set(item) - {"group", "team", "role", "can_triage"}:
        raise RuleError(f"{where} must be an object with group, role, and team unless the role is admin (and optional can_triage)")
    group, role, team = item.get("group"), item.get("role"), item.get("team", "")
    if not isinstance(group, str) or not group:
        raise RuleError(f"{where} needs a group")
    if role == ADMIN:
        if team:
            raise RuleError(f"{where}: the admin role is not per team; leave team out")
        return Rule(group=group, role=ADMIN)
    if role not in TEAM_ROLES:
        raise RuleError(f"{where}: role must be one of {', '.join((*TEAM_ROLES, ADMIN))}")
    if not isinstance(team, str) or not team:
        raise RuleError(f"{where} needs the slug of a team")
    can_triage = item.get("can_triage", False)
    if not isinstance(can_triage, bool) or (can_triage and role != "manager"):
        raise RuleError(f"{where}: can_triage is true or false, and only for a manager")
    return Rule(group=group, role=role, team=team, can_triage=can_triage)


def managed_teams(rules: Iterable[Rule]) -> set[str]:
    """The teams whose memberships follow the provider's groups."""
    return {rule.team for rule in rules if rule.role != ADMIN}


def manages_admin(rules: Iterable[Rule]) -> bool:
    return any(rule.role == ADMIN for rule in rules)


def grants_for(groups: Iterable[str], rules: Iterable[Rule]) -> tuple[dict[str, Grant], bool]:
    """What a person with these groups should be: the grant per team slug, and whether an administrator."""
    held = set(groups)
    grants: dict[str, Grant] = {}
    admin = False
    for rule in rules:
        if rule.group not in held:
            continue
        if rule.role == ADMIN:
            admin = True
            continue
        grant = Grant(role=rule.role, can_triage=rule.can_triage)
        current = grants.get(rule.team)
        if current is None or RANK[(grant.role, grant.can_triage)] > RANK[(current.role, current.can_triage)]:
            grants[rule.team] = grant
    return grants, admin
