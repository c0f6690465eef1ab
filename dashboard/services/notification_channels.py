"""A team's notification channels and their rules, changed by its administrators (champions, staff, admin tokens).

Every change is audited; the webhook URL is a secret and is recorded masked, never in full.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import TEAM_EVENTS, AuditEvent, NotificationChannel, Role, Team, TokenScope
from dashboard.services.audit import audit_record
from dashboard.services.team_settings import can_change_team_settings


def can_manage_notifications(user: Any, team: Team) -> bool:
    """Who changes a team's settings, and the team's admin-scope tokens."""
    token = getattr(user, "api_token", None)
    if token is not None:
        return token.scope == TokenScope.ADMIN and team.pk in token.team_ids()
    return can_change_team_settings(user, team)


def _require(user: Any, team: Team) -> None:
    if not can_manage_notifications(user, team):
        raise ApplicationError(f"only administrators and champions of {team.slug} change its notifications", code="forbidden", status=403)


def _clean_events(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not all(isinstance(event, str) for event in events):
        raise ApplicationError("events: a list of event names", code="invalid_events")
    unknown = sorted(set(events) - set(TEAM_EVENTS))
    if unknown:
        raise ApplicationError(f"events: unknown {', '.join(unknown)} (known: {', '.join(TEAM_EVENTS)})", code="invalid_events")
    return [event for event in TEAM_EVENTS if event in events]


def _clean_roles(roles: Any) -> list[str]:
    if not isinstance(roles, list | tuple) or not all(isinstance(role, str) and role in Role.values for role in roles):
        raise ApplicationError(f"roles: a list of {', '.join(Role.values)}", code="invalid_roles")
    return [role for role in Role.values if role in roles]


def _clean_url(kind: str, url: Any) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    if kind != NotificationChannel.Kind.WEBHOOK:
        return ""
    try:
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError:
        raise ApplicationError("url: a webhook channel needs an http(s) URL", code="invalid_webhook") from None
    return url


def channel_state(channel: NotificationChannel) -> dict[str, Any]:
    """What the API shows and the audit log records: everything but the full URL."""
    return {
        "id": channel.pk,
        "team": channel.team.slug,
        "kind": channel.kind,
        "name": channel.name,
        "url": channel.masked_url,
        "roles": list(channel.roles),
        "events": list(channel.events),
        "active": channel.active,
    }


def _audit(*, by: Any, team: Team, channel: NotificationChannel, verb: str, ip: str | None, details: dict[str, Any]) -> None:
    audit_record(
        action=AuditEvent.Action.NOTIFICATIONS_CHANGED,
        actor=by,
        ip=ip,
        team=team,
        target_type="notification_channel",
        target_id=str(channel.pk),
        summary=f"notification channel {channel.name!r} of {team.slug} {verb}",
        details=details,
    )


@transaction.atomic
def channel_create(
    *, team: Team, by: Any, kind: str, name: str, url: str = "", events: Any = (), roles: Any = (), ip: str | None = None
) -> NotificationChannel:
    _require(by, team)
    if kind not in NotificationChannel.Kind.values:
        raise ApplicationError(f"kind: one of {', '.join(NotificationChannel.Kind.values)}", code="invalid_kind")
    name = (name or "").strip()[:100] if isinstance(name, str) else ""
    if not name:
        raise ApplicationError("name: give the channel a name", code="invalid_name")
    channel = NotificationChannel.objects.create(
        team=team, kind=kind, name=name, url=_clean_url(kind, url), events=_clean_events(list(events)),
        roles=_clean_roles(list(roles)), created_at=timezone.now(),
    )  # fmt: skip
    _audit(by=by, team=team, channel=channel, verb="added", ip=ip, details={"after": channel_state(channel)})
    return channel


@transaction.atomic
def channel_update(*, channel: NotificationChannel, by: Any, changes: dict[str, Any], ip: str | None = None) -> NotificationChannel:
    """Change any of ``name``, ``url`` (webhooks; absent or "" keeps the secret), ``events``, ``roles``, ``active``."""
    _require(by, channel.team)
    unknown = sorted(set(changes) - {"name", "url", "events", "roles", "active"})
    if unknown:
        raise ApplicationError(f"unknown fields: {', '.join(unknown)}", code="invalid")
    before = channel_state(channel)
    if "name" in changes:
        name = changes["name"].strip()[:100] if isinstance(changes["name"], str) else ""
        if not name:
            raise ApplicationError("name: give the channel a name", code="invalid_name")
        channel.name = name
    if changes.get("url"):
        channel.url = _clean_url(channel.kind, changes["url"])
    if "events" in changes:
        channel.events = _clean_events(changes["events"])
    if "roles" in changes:
        channel.roles = _clean_roles(changes["roles"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise ApplicationError("active: true or false", code="invalid")
        channel.active = changes["active"]
    channel.save()
    url_changed = bool(changes.get("url"))
    _audit(by=by, team=channel.team, channel=channel, verb="changed", ip=ip,
           details={"before": before, "after": channel_state(channel), "url_changed": url_changed})  # fmt: skip
    return channel


@transaction.atomic
def channel_delete(*, channel: NotificationChannel, by: Any, ip: str | None = None) -> None:
    _require(by, channel.team)
    _audit(by=by, team=channel.team, channel=channel, verb="removed", ip=ip, details={"before": channel_state(channel)})
    channel.delete()
