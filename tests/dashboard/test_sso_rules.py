"""The group rules read from VIGIL_SSO_RULES: what they grant, and which mistakes stop the start-up."""

from __future__ import annotations

import pytest

from dashboard.services.sso_rules import Grant, RuleError, grants_for, managed_teams, manages_admin, parse_rules

RULES = parse_rules(
    """[{"group": "pay-devs", "team": "payments", "role": "member"},
        {"group": "pay-champions", "team": "payments", "role": "champion"},
        {"group": "leads", "team": "payments", "role": "manager", "can_triage": true},
        {"group": "leads", "team": "platform", "role": "manager"},
        {"group": "secops", "role": "admin"}]"""
)


def test_the_rule_that_allows_most_wins_for_a_team() -> None:
    grants, admin = grants_for(["pay-devs", "pay-champions", "leads"], RULES)

    assert grants == {"payments": Grant("champion", False), "platform": Grant("manager", False)}
    assert admin is False


def test_a_manager_with_the_triage_grant_outranks_a_member() -> None:
    grants, _ = grants_for(["pay-devs", "leads"], RULES)

    assert grants["payments"] == Grant("manager", True)


def test_the_admin_rule_makes_an_administrator_of_no_team() -> None:
    assert grants_for(["secops"], RULES) == ({}, True)


def test_the_rules_name_the_teams_they_manage() -> None:
    assert managed_teams(RULES) == {"payments", "platform"}
    assert manages_admin(RULES) is True
    assert manages_admin(parse_rules("[]")) is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not JSON"),
        ('{"group": "a"}', "JSON list"),
        ('[{"team": "payments", "role": "member"}]', "needs a group"),
        ('[{"group": "a", "team": "payments", "role": "owner"}]', "role must be one of"),
        ('[{"group": "a", "role": "member"}]', "slug of a team"),
        ('[{"group": "a", "team": "payments", "role": "admin"}]', "not per team"),
        ('[{"group": "a", "team": "payments", "role": "member", "can_triage": true}]', "only for a manager"),
        ('[{"group": "a", "team": "payments", "role": "member", "teams": "x"}]', "must be an object"),
    ],
)
def test_a_mistake_in_the_rules_is_refused_with_its_place(raw: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rules(raw)
