from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from dashboard.errors import ApplicationError
from dashboard.models import Membership, Role, Team


def team_create(*, slug: str, name: str = "") -> Team:
    clean = slugify(slug)
    if not clean or clean != slug:
        raise ApplicationError(f"invalid team slug {slug!r}: use lowercase letters, digits and hyphens", code="invalid_slug")
    if Team.objects.filter(slug=slug).exists():
        raise ApplicationError(f"team {slug!r} already exists", code="exists", status=409)
    return Team.objects.create(slug=slug, name=name or slug.replace("-", " ").title())


@transaction.atomic
def membership_set(*, user: User, team: Team, role: str) -> Membership:
    if role not in Role.values:
        raise ApplicationError(f"unknown role {role!r}; use one of {', '.join(Role.values)}")
    membership, _ = Membership.objects.update_or_create(user=user, team=team, defaults={"role": role})
    return membership


def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False) -> User:
    user_model = get_user_model()
    user = user_model.objects.create_user(username=username, password=password, email=email)
    if is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user
