from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Membership, Role, Team
from dashboard.selectors.access import ensure_administrator
from dashboard.services.audit import audit_record


def team_create(*, slug: str, name: str = "") -> Team:
    clean = slugify(slug)
    if not clean or clean != slug:
        raise ApplicationError(f"invalid team slug {slug!r}: use lowercase letters, digits and hyphens", code="invalid_slug")
    if Team.objects.filter(slug=slug).exists():
        raise ApplicationError(f"team {slug!r} already exists", code="exists", status=409)
    return Team.objects.create(slug=slug, name=name or slug.replace("-", " ").title())


@transaction.atomic
def membership_set(
    *, user: User, team: Team, role: str, can_triage: bool = False, by: Any = None, ip: str | None = None, reason: str = ""
) -> Membership:
    """Add a person to a team or change their role (audited).  ``can_triage`` is a manager's triage grant."""
    ensure_administrator(by, "change memberships")
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}; use one of {', '.join(Role.values)}")
    before = Membership.objects.filter(user=user, team=team).values("role", "can_triage").first()
    membership, _ = Membership.objects.update_or_create(user=user, team=team, defaults={"role": role, "can_triage": can_triage})
    after = {"role": role, "can_triage": can_triage}
    if before != after:
        grant = " with the triage grant" if can_triage and role == Role.MANAGER else ""
        audit_record(
            action=AuditEvent.Action.MEMBERSHIP_SET,
            actor=by,
            ip=ip,
            team=team,
            target_type="user",
            target_id=str(user.pk),
            summary=f"{user.get_username()} is {role} of {team.slug}{grant}" + (f" (was {before['role']})" if before else ""),
            reason=reason,
            details={"user": user.get_username(), "before": before, "after": after},
        )
    return membership


@transaction.atomic
def membership_remove(*, user: User, team: Team, by: Any = None, ip: str | None = None, reason: str = "") -> bool:
    """Take a person out of a team (audited).  Returns whether they were in it."""
    ensure_administrator(by, "change memberships")
    deleted, _ = Membership.objects.filter(user=user, team=team).delete()
    if deleted:
        audit_record(
            action=AuditEvent.Action.MEMBERSHIP_REMOVED,
            actor=by,
            ip=ip,
            team=team,
            target_type="user",
            target_id=str(user.pk),
            summary=f"{user.get_username()} removed from {team.slug}",
            reason=reason,
            details={"user": user.get_username()},
        )
    return bool(deleted)


def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False, is_superuser: bool = False) -> User:
    """A person; ``is_superuser`` makes an administrator Django's admin accepts for every model."""
    user_model = get_user_model()
    user = user_model.objects.create_user(username=username, password=password, email=email)
    if is_staff or is_superuser:
        user.is_staff = is_staff or is_superuser
        user.is_superuser = is_superuser
        user.save(update_fields=["is_staff", "is_superuser"])
    return user
