"""GET and PUT /api/v1/policies/{team}/: partial changes, validation, versions, audit, and who may."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from dashboard.models import AuditEvent, EnforcementPolicy, EnforcementPolicyVersion, Role
from dashboard.services.policies import policy_update
from dashboard.services.tokens import token_create
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/policies/payments/"


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def person(team, role: str | None, *, can_triage: bool = False, staff: bool = False) -> APIClient:
    user = UserFactory(is_staff=staff)
    if role is not None:
        MembershipFactory(user=user, team=team, role=role, can_triage=can_triage)
    client = APIClient()
    client.force_login(user)
    return client


def token(team, scope: str) -> APIClient:
    _, secret = token_create(team=team, name=f"{team.slug} {scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_team_without_a_policy_shows_the_default_it_inherits(team) -> None:
    body = token(team, "read").get(URL).json()
    assert (body["team"], body["own"], body["mode"], body["min_severity"], body["fix_required"], body["kev"], body["unknown_image"]) == (
        "payments",
        False,
        "warn",
        "critical",
        True,
        True,
        "warn",
    )


def test_a_partial_put_changes_only_what_it_names_and_is_versioned_and_audited(team) -> None:
    client = person(team, Role.CHAMPION)
    first = client.put(URL, {"mode": "enforce", "reason": "go-live"}, format="json").json()
    second = client.put(URL, {"namespace_modes": {"payments-dev": "audit"}, "epss_min": 0.5, "rule_ids": ["KSV012"]}, format="json").json()
    assert (first["mode"], first["version"], first["own"]) == ("enforce", 1, True)
    assert (second["mode"], second["version"], second["namespace_modes"], second["epss_min"], second["rule_ids"]) == (
        "enforce",
        2,
        {"payments-dev": "audit"},
        0.5,
        ["KSV012"],
    )
    versions = list(EnforcementPolicyVersion.objects.order_by("version").values_list("version", "changed", "reason"))
    assert versions == [(1, ["mode"], "go-live"), (2, ["namespace_modes", "epss_min", "rule_ids"], "")]
    audits = list(AuditEvent.objects.filter(action=AuditEvent.Action.POLICY_CHANGED).order_by("id").values_list("team_slug", "summary"))
    assert audits[0] == ("payments", "enforcement policy of payments v1: mode='enforce'")
    assert len(audits) == 2


def test_a_put_that_changes_nothing_makes_no_version(team) -> None:
    client = person(team, Role.CHAMPION)
    client.put(URL, {"mode": "enforce"}, format="json")
    assert client.put(URL, {"mode": "enforce"}, format="json").json()["version"] == 1
    assert EnforcementPolicyVersion.objects.count() == 1


def test_a_team_policy_starts_from_the_organisation_default(team) -> None:
    policy_update(team=None, by=UserFactory(is_staff=True), changes={"min_severity": "high", "secrets": True})
    body = person(team, Role.CHAMPION).put(URL, {"mode": "enforce"}, format="json").json()
    assert (body["min_severity"], body["secrets"], body["mode"]) == ("high", True, "enforce")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "block"}, "mode"),
        ({"min_severity": "severe"}, "min_severity"),
        ({"kev": "yes"}, "kev"),
        ({"epss_min": 1.5}, "epss_min"),
        ({"epss_min": True}, "epss_min"),
        ({"rule_ids": "KSV012"}, "rule_ids"),
        ({"rule_ids": [""]}, "rule_ids"),
        ({"namespace_modes": {"prod": "deny"}}, "namespace_modes[prod]"),
        ({"namespace_modes": ["prod"]}, "namespace_modes"),
        ({"unknown_image": "maybe"}, "unknown_image"),
    ],
)
def test_bad_values_are_a_400_and_change_nothing(team, body: dict, field: str) -> None:
    response = person(team, Role.CHAMPION).put(URL, body, format="json")
    assert (response.status_code, list(response.json()["error"]["details"])) == (400, [field])
    assert EnforcementPolicy.objects.count() == 0


def test_an_unknown_field_is_refused(team) -> None:
    response = person(team, Role.CHAMPION).put(URL, {"mood": "enforce"}, format="json")
    assert (response.status_code, "mood" in response.json()["error"]["message"]) == (400, True)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("champion", 200),
        ("manager with grant", 200),
        ("staff", 200),
        ("admin token", 200),
        ("member", 403),
        ("manager without grant", 403),
        ("read token", 403),
        ("ingest token", 403),
        ("other team's champion", 404),
        ("other team's admin token", 404),
    ],
)
def test_who_may_change_a_policy(team, who: str, status: int) -> None:
    other = TeamFactory(slug="storefront")
    clients = {
        "champion": lambda: person(team, Role.CHAMPION),
        "manager with grant": lambda: person(team, Role.MANAGER, can_triage=True),
        "staff": lambda: person(team, None, staff=True),
        "admin token": lambda: token(team, "admin"),
        "member": lambda: person(team, Role.MEMBER),
        "manager without grant": lambda: person(team, Role.MANAGER),
        "read token": lambda: token(team, "read"),
        "ingest token": lambda: token(team, "ingest"),
        "other team's champion": lambda: person(other, Role.CHAMPION),
        "other team's admin token": lambda: token(other, "admin"),
    }
    response = clients[who]().put(URL, {"mode": "enforce"}, format="json")
    assert response.status_code == status
    assert EnforcementPolicy.objects.filter(team=team, mode="enforce").count() == int(status == 200)


def test_members_read_the_policy_but_other_teams_do_not(team) -> None:
    assert person(team, Role.MEMBER).get(URL).status_code == 200
    assert person(TeamFactory(slug="storefront"), Role.CHAMPION).get(URL).status_code == 404


def test_only_staff_change_the_organisation_default(team) -> None:
    champion = UserFactory()
    MembershipFactory(user=champion, team=team, role=Role.CHAMPION)
    with pytest.raises(Exception, match="organisation"):
        policy_update(team=None, by=champion, changes={"mode": "enforce"})
    assert policy_update(team=None, by=UserFactory(is_staff=True), changes={"mode": "enforce"}).version == 1
