"""Single sign-on against a real OpenID Connect provider (django-oauth-toolkit, started by the test).

The authorization code flow is driven end to end with a real HTTP client: Vigil's "Sign in with"
link, the provider's login form, the callback, Vigil's token exchange and signature check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.core.exceptions import SuspiciousOperation

from dashboard.models import AuditEvent, Membership, Role, SsoIdentity
from dashboard.services.sso_rules import parse_rules
from dashboard.sso.backends import VigilOIDCBackend
from tests.factories import TeamFactory
from tests.sso_provider.harness import Provider, provider_id_token, rsa_private_pem, running_provider, vigil_sso_login

pytestmark = [pytest.mark.django_db(transaction=True)]

RULES = [
    {"group": "payments-champions", "team": "payments", "role": "champion"},
    {"group": "payments-devs", "team": "payments", "role": "member"},
    {"group": "platform-leads", "team": "platform", "role": "manager", "can_triage": True},
    {"group": "secops", "role": "admin"},
]


@pytest.fixture(scope="module")
def provider(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    people = {"ada": {"email": "ada@example.com", "groups": []}, "mallory": {"email": "mallory@example.com", "groups": []}}
    with running_provider(tmp_path_factory.mktemp("provider"), f"{live_server.url}/oidc/callback/", people) as running:
        yield running


@pytest.fixture
def sso(settings: Any, provider: Provider) -> Provider:
    for name, value in provider.vigil_settings().items():
        setattr(settings, name, value)
    settings.VIGIL_SSO_RULES = parse_rules(json.dumps(RULES))
    TeamFactory(slug="payments")
    TeamFactory(slug="platform")
    return provider


def test_login_through_the_provider_creates_the_user_with_the_mapped_roles(sso: Provider, live_server: Any) -> None:
    sso.set_groups("ada", ["payments-champions", "platform-leads", "unrelated"])

    session, landed = vigil_sso_login(live_server.url, "ada")

    assert landed.status_code == 200
    assert landed.url == f"{live_server.url}/"
    identity = SsoIdentity.objects.select_related("user").get()
    assert (identity.issuer, identity.user.username, identity.user.email) == (sso.issuer, "ada", "ada@example.com")
    assert identity.groups == ["payments-champions", "platform-leads", "unrelated"]
    memberships = set(Membership.objects.filter(user=identity.user).values_list("team__slug", "role", "can_triage"))
    assert memberships == {("payments", Role.CHAMPION, False), ("platform", Role.MANAGER, True)}
    assert session.get(f"{live_server.url}/findings/", timeout=30, allow_redirects=False).status_code == 200


def test_a_group_removed_at_the_provider_removes_the_role_at_the_next_login(sso: Provider, live_server: Any) -> None:
    sso.set_groups("ada", ["payments-champions", "platform-leads", "secops"])
    vigil_sso_login(live_server.url, "ada")
    sso.set_groups("ada", ["payments-devs"])

    _, landed = vigil_sso_login(live_server.url, "ada")

    user = SsoIdentity.objects.get().user
    assert landed.url == f"{live_server.url}/"
    assert set(Membership.objects.filter(user=user).values_list("team__slug", "role")) == {("payments", Role.MEMBER)}
    assert user.is_staff is False
    changes = AuditEvent.objects.filter(actor_label="Vigil (single sign-on)").order_by("id")
    assert [event.action for event in changes] == [
        AuditEvent.Action.SSO_USER_CREATED,
        AuditEvent.Action.MEMBERSHIP_SET,
        AuditEvent.Action.MEMBERSHIP_SET,
        AuditEvent.Action.ADMIN_CHANGED,
        AuditEvent.Action.MEMBERSHIP_SET,
        AuditEvent.Action.MEMBERSHIP_REMOVED,
        AuditEvent.Action.ADMIN_CHANGED,
    ]
    assert changes.last().reason == "identity provider groups: payments-devs"  # type: ignore[union-attr]


def _tampered(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, **claims}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_id_token_is_refused(sso: Provider) -> None:
    token = provider_id_token(sso, "mallory", nonce="n-1")
    backend = VigilOIDCBackend()

    assert backend.verify_token(token, nonce="n-1")["preferred_username"] == "mallory"
    with pytest.raises(SuspiciousOperation, match="verification failed"):
        backend.verify_token(_tampered(token, groups=["secops"]), nonce="n-1")
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        backend.verify_token(token, nonce="another-login")


def test_an_id_token_for_another_client_is_refused(sso: Provider, settings: Any) -> None:
    token = provider_id_token(sso, "mallory", nonce="n-2")
    settings.OIDC_RP_CLIENT_ID = "another-client"

    with pytest.raises(SuspiciousOperation, match="not meant for this client"):
        VigilOIDCBackend().verify_token(token, nonce="n-2")


def test_an_id_token_from_another_issuer_is_refused(sso: Provider, settings: Any) -> None:
    token = provider_id_token(sso, "mallory", nonce="n-3")
    settings.VIGIL_OIDC_ISSUER = "https://idp.example.com"

    with pytest.raises(SuspiciousOperation, match="not by the configured provider"):
        VigilOIDCBackend().verify_token(token, nonce="n-3")


def test_an_id_token_signed_with_another_key_under_the_providers_key_id_is_refused(sso: Provider) -> None:
    token = provider_id_token(sso, "mallory", nonce="n-4")
    header = jwt.get_unverified_header(token)
    claims = {**jwt.decode(token, options={"verify_signature": False}), "groups": ["secops"]}
    forged = jwt.encode(claims, rsa_private_pem(), algorithm="RS256", headers={"kid": header["kid"]})

    with pytest.raises(SuspiciousOperation, match="verification failed"):
        VigilOIDCBackend().verify_token(forged, nonce="n-4")


def test_a_local_account_of_the_same_name_is_not_taken_over(sso: Provider, live_server: Any, django_user_model: Any) -> None:
    django_user_model.objects.create_user(username="mallory", password="local-password-1")
    sso.set_groups("mallory", ["secops"])

    _, landed = vigil_sso_login(live_server.url, "mallory")

    assert landed.url == f"{live_server.url}/login/?sso=failed"
    assert "Single sign-on did not complete" in landed.text
    assert SsoIdentity.objects.count() == 0
    assert django_user_model.objects.get(username="mallory").is_staff is False
