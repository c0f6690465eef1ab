"""The group mapping as a service (the system actor, audited) and the login page with and without local accounts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from dashboard.actors import SSO_ACTOR
from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Membership, Role, SsoIdentity
from dashboard.services.sso import sso_apply_groups, sso_login
from dashboard.services.sso_rules import parse_rules
from dashboard.services.teams import membership_set
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

RULES = parse_rules('[{"group": "pay", "team": "payments", "role": "champion"}, {"group": "ops", "role": "admin"}]')
ISSUER = "https://idp.example.com"


def test_the_mapping_leaves_teams_no_rule_names_to_administrators() -> None:
    payments, other = TeamFactory(slug="payments"), TeamFactory(slug="other")
    user = UserFactory()
    MembershipFactory(user=user, team=other, role=Role.MEMBER)

    sso_apply_groups(user=user, groups=["pay"], rules=RULES)
    sso_apply_groups(user=user, groups=[], rules=RULES)

    assert list(Membership.objects.filter(user=user).values_list("team", "role")) == [(other.pk, Role.MEMBER)]
    assert not Membership.objects.filter(team=payments).exists()


def test_each_change_is_audited_as_the_system_actor_with_the_groups_as_reason() -> None:
    TeamFactory(slug="payments")
    user = UserFactory(username="ada")

    sso_apply_groups(user=user, groups=["ops", "pay"], rules=RULES, ip="192.0.2.7")
    sso_apply_groups(user=user, groups=["ops", "pay"], rules=RULES, ip="192.0.2.7")

    events = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label", "actor", "ip", "reason"))
    reason = "identity provider groups: ops, pay"
    assert events == [
        (AuditEvent.Action.MEMBERSHIP_SET, "Vigil (single sign-on)", None, "192.0.2.7", reason),
        (AuditEvent.Action.ADMIN_CHANGED, "Vigil (single sign-on)", None, "192.0.2.7", reason),
    ]


def test_a_rule_naming_a_team_that_does_not_exist_grants_nothing() -> None:
    user = UserFactory()

    sso_apply_groups(user=user, groups=["pay"], rules=RULES)

    assert not Membership.objects.filter(user=user).exists()


def test_the_system_actor_is_not_a_logged_in_person_but_passes_the_membership_check() -> None:
    team, user = TeamFactory(), UserFactory()

    membership = membership_set(user=user, team=team, role=Role.MEMBER, by=SSO_ACTOR)

    assert SSO_ACTOR.is_authenticated is False
    assert membership.role == Role.MEMBER
    with pytest.raises(ApplicationError, match="only administrators"):
        membership_set(user=user, team=team, role=Role.CHAMPION, by=UserFactory())


def test_a_login_without_a_subject_is_refused(settings: Any) -> None:
    settings.VIGIL_SSO_RULES = RULES

    with pytest.raises(ApplicationError, match="no subject"):
        sso_login(issuer=ISSUER, claims={"preferred_username": "ada"})


def test_the_same_subject_is_the_same_person_even_under_a_new_name(settings: Any) -> None:
    settings.VIGIL_SSO_RULES = RULES

    first = sso_login(issuer=ISSUER, claims={"sub": "42", "preferred_username": "ada", "groups": ["pay"]})
    again = sso_login(issuer=ISSUER, claims={"sub": "42", "preferred_username": "ada.lovelace", "groups": "ops"})

    assert again == first
    assert SsoIdentity.objects.get().groups == ["ops"]
    assert first.has_usable_password() is False


def test_a_groups_claim_that_is_not_a_list_of_names_is_refused(settings: Any) -> None:
    settings.VIGIL_SSO_RULES = RULES

    with pytest.raises(ApplicationError, match="not a list of names"):
        sso_login(issuer=ISSUER, claims={"sub": "42", "groups": {"pay": True}})


def test_with_local_login_off_the_form_is_hidden_and_a_password_post_refused(settings: Any, client: Client) -> None:
    settings.VIGIL_LOCAL_LOGIN = False
    UserFactory(username="local", password="correct-horse-battery")

    page = client.get("/login/")
    post = client.post("/login/", {"username": "local", "password": "correct-horse-battery"})
    admin = client.post("/admin/login/", {"username": "local", "password": "correct-horse-battery"})

    assert 'name="password"' not in page.content.decode()
    assert "Local accounts are turned off" in page.content.decode()
    assert post.status_code == 403
    assert "_auth_user_id" not in client.session
    assert admin.status_code == 200


def test_with_local_login_on_and_sso_configured_both_are_offered(settings: Any, client: Client) -> None:
    settings.VIGIL_OIDC_PROVIDER_NAME = "Keycloak"
    settings.VIGIL_OIDC_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID = "vigil"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{ISSUER}/userinfo"

    page = client.get("/login/?next=/findings/").content.decode()

    assert 'href="/oidc/authenticate/?next=/findings/"' in page
    assert "Sign in with Keycloak" in page
    assert 'name="password"' in page


def test_without_sso_configured_its_urls_do_not_exist(client: Client) -> None:
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert "Sign in with" not in client.get("/login/").content.decode()
