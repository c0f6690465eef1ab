"""A team's settings that its champions and administrators change often: SLA days, four-eyes, the digest
webhook and who the champion is.  Every change is audited with what it was before."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Membership, Role, Severity, Team, TeamWebhook
from dashboard.models.access import sees_everything
from dashboard.services.audit import audit_record

#: The longest SLA a team may set, in days.
MAX_SLA_DAYS = 3650


def can_change_team_settings(user: Any, team: Team) -> bool:
    """Administrators, and the team's champions."""
    if sees_everything(user):
        return True
    if not getattr(user, "is_authenticated", False) or getattr(user, "api_token", None) is not None:
        return False
    return Membership.objects.filter(user=user, team=team, role=Role.CHAMPION).exists()


def _clean_sla(sla_days: dict[str, Any]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for severity, value in sla_days.items():
        if severity not in Severity.values:
            raise ApplicationError(f"unknown severity {severity!r}", code="invalid_sla")
        if value in (None, ""):
            continue  # the default applies
        try:
            days = int(value)
        except (TypeError, ValueError):
            raise ApplicationError(f"SLA for {severity}: {value!r} is not a number of days", code="invalid_sla") from None
        if not 1 <= days <= MAX_SLA_DAYS:
            raise ApplicationError(f"SLA for {severity}: use 1 to {MAX_SLA_DAYS} days", code="invalid_sla")
        clean[severity] = days
    return clean


def _clean_webhook(url: str) -> str:
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["https", "http"])(url)
        except ValidationError:
            raise ApplicationError(f"{url[:200]!r} is not an http(s) URL", code="invalid_webhook") from None
    return url


def _state(team: Team) -> dict[str, Any]:
    hook = TeamWebhook.objects.filter(team=team, active=True).values_list("url", flat=True).first()
    champions = sorted(Membership.objects.filter(team=team, role=Role.CHAMPION).values_list("user__username", flat=True))
    return {"sla_days": dict(team.sla_days or {}), "four_eyes": team.four_eyes, "webhook": bool(hook), "champions": champions}


@transaction.atomic
def team_settings_update(
    *,
    team: Team,
    by: Any,
    sla_days: dict[str, Any],
    four_eyes: bool,
    webhook_url: str,
    champion: str = "",
    ip: str | None = None,
) -> Team:
    """Change a team's settings; ``champion`` (a member's username, "" to keep) becomes its champion."""
    if not can_change_team_settings(by, team):
        raise ApplicationError(f"only administrators and champions of {team.slug} change its settings", code="forbidden", status=403)
    clean_sla, url = _clean_sla(sla_days), _clean_webhook(webhook_url)
    person = None
    if champion:
        person = get_user_model().objects.filter(username=champion, is_active=True, memberships__team=team).first()
        if person is None:
            raise ApplicationError(f"{champion!r} is not a member of {team.slug}", code="unknown_member")
    before = _state(team)
    team.sla_days, team.four_eyes = clean_sla, bool(four_eyes)
    team.save(update_fields=["sla_days", "four_eyes"])
    if url:
        TeamWebhook.objects.update_or_create(team=team, defaults={"url": url, "active": True})
    else:
        TeamWebhook.objects.filter(team=team).delete()
    if person is not None:
        Membership.objects.filter(team=team, user=person).update(role=Role.CHAMPION, can_triage=False)
    after = _state(team)
    if after != before:
        audit_record(
            action=AuditEvent.Action.TEAM_SETTINGS,
            actor=by,
            ip=ip,
            team=team,
            target=team,
            summary=f"settings of {team.slug} changed: " + ", ".join(key for key in after if after[key] != before[key]),
            details={"before": before, "after": after},
        )
    return team
