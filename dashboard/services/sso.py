"""Single sign-on: find or create the person an identity provider vouches for, and apply the group rules.

The group mapping writes memberships through the membership services like an administrator
would, as the system actor ``SSO_ACTOR``: each change is audited as "Vigil (single sign-on)"
with the groups that caused it.  It runs at every login, so a group removed at the provider
removes the role at the person's next login.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from dashboard.actors import SSO_ACTOR
from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Membership, SsoIdentity, Team
from dashboard.services.audit import audit_record
from dashboard.services.sso_rules import Rule, grants_for, managed_teams, manages_admin
from dashboard.services.teams import membership_remove, membership_set

logger = logging.getLogger(__name__)

_REQUIRED = ("OIDC_RP_CLIENT_ID", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "VIGIL_OIDC_ISSUER")


def sso_enabled() -> bool:
    """Single sign-on is on when the provider's client, endpoints and issuer are all configured."""
    return all(getattr(settings, name, "") for name in _REQUIRED)


def claimed_groups(claims: Mapping[str, Any]) -> list[str]:
    """The groups claim (``VIGIL_OIDC_GROUPS_CLAIM``) as a sorted list of names; absent means none."""
    value = claims.get(settings.VIGIL_OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(group, str) for group in value):
        raise ApplicationError("the identity provider sent a groups claim that is not a list of names", code="sso_claims")
    return sorted(set(value))


@transaction.atomic
def sso_login(*, issuer: str, claims: Mapping[str, Any], ip: str | None = None) -> User:
    """The Vigil user of ``(issuer, sub)``, created at the first login, with the rules applied to its groups."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ApplicationError("the identity provider sent no subject", code="sso_claims")
    groups = claimed_groups(claims)
    identity = SsoIdentity.objects.select_related("user").select_for_update().filter(issuer=issuer, subject=subject).first()
    if identity is None:
        identity = _identity_create(issuer=issuer, subject=subject, claims=claims, ip=ip)
    user = identity.user
    email = claims.get("email")
    if isinstance(email, str) and email and email != user.email:
        user.email = email
        user.save(update_fields=["email"])
    identity.groups = groups
    identity.last_login_at = timezone.now()
    identity.save(update_fields=["groups", "last_login_at"])
    sso_apply_groups(user=user, groups=groups, rules=settings.VIGIL_SSO_RULES, ip=ip)
    return user


def _identity_create(*, issuer: str, subject: str, claims: Mapping[str, Any], ip: str | None) -> SsoIdentity:
    username = _username(claims, subject)
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        # Linking by name would let whoever gets that name at the provider take over a local account.
        raise ApplicationError(
            f"a local account is already called {username!r}; an administrator must rename it first", code="sso_username_taken", status=409
        )
    user = user_model.objects.create_user(username=username, email=str(claims.get("email") or ""))
    identity = SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    audit_record(
        action=AuditEvent.Action.SSO_USER_CREATED,
        actor=SSO_ACTOR,
        ip=ip,
        target_type="user",
        target_id=str(user.pk),
        summary=f"{username} created at the first single sign-on login",
        details={"user": username, "issuer": issuer, "subject": subject},
    )
    return identity


def _username(claims: Mapping[str, Any], subject: str) -> str:
    user_model = get_user_model()
    max_length = user_model._meta.get_field("username").max_length or 150
    value = claims.get(settings.VIGIL_OIDC_USERNAME_CLAIM)
    if not isinstance(value, str) or not value.strip():
        value = subject
    return value.strip()[:max_length]


def sso_apply_groups(*, user: User, groups: Sequence[str], rules: Sequence[Rule], ip: str | None = None) -> None:
    """Make ``user``'s memberships of the teams the rules name, and its staff flag, follow ``groups``."""
    grants, admin = grants_for(groups, rules)
    reason = f"identity provider groups: {', '.join(groups) or 'none'}"
    teams = {team.slug: team for team in Team.objects.filter(slug__in=managed_teams(rules))}
    for slug in sorted(managed_teams(rules) - set(teams)):
        logger.warning("VIGIL_SSO_RULES names team %r, which does not exist: its rules grant nothing", slug)
    held = {membership.team.slug: membership for membership in Membership.objects.filter(user=user, team__in=teams.values())}
    for slug, team in sorted(teams.items()):
        grant = grants.get(slug)
        if grant is not None:
            current = held.get(slug)
            if current is None or (current.role, current.can_triage) != (grant.role, grant.can_triage):
                membership_set(user=user, team=team, role=grant.role, can_triage=grant.can_triage, by=SSO_ACTOR, ip=ip, reason=reason)
        elif slug in held:
            membership_remove(user=user, team=team, by=SSO_ACTOR, ip=ip, reason=reason)
    if manages_admin(rules) and user.is_staff != admin:
        _admin_set(user=user, admin=admin, ip=ip, reason=reason)


def _admin_set(*, user: User, admin: bool, ip: str | None, reason: str) -> None:
    user.is_staff = admin
    user.save(update_fields=["is_staff"])
    audit_record(
        action=AuditEvent.Action.ADMIN_CHANGED,
        actor=SSO_ACTOR,
        ip=ip,
        target_type="user",
        target_id=str(user.pk),
        summary=f"{user.get_username()} {'is now' if admin else 'is no longer'} an administrator",
        reason=reason,
        details={"user": user.get_username(), "is_staff": admin},
    )
