"""The append-only audit log: ``audit_record`` is the one way to write it.

Call it from any service that does something security-relevant, with who (a person, a
token, or None for Vigil itself), from where (the client address), what and why::

    audit_record(action=AuditEvent.Action.RISK_ACCEPTED, actor=request.user, ip=client_ip(request.META),
                 team=finding.team, target=finding, summary="accepted CVE-2024-1234 until 2027-01-31", reason=reason)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.actors import SystemActor
from dashboard.models import ApiToken, AuditEvent, Team


def client_ip(meta: Mapping[str, Any]) -> str | None:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry set by our own trusted proxies.

    ``VIGIL_TRUSTED_PROXIES`` is how many proxies of ours append to X-Forwarded-For (0: trust none).
    """
    address = str(meta.get("REMOTE_ADDR") or "")
    proxies: int = getattr(settings, "VIGIL_TRUSTED_PROXIES", 0)
    if proxies > 0:
        hops = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def request_client_ip(request: Any) -> str | None:
    """``client_ip`` of a Django request (django-axes calls this)."""
    return client_ip(request.META)


def actor_label(actor: Any) -> str:
    if actor is None:
        return "Vigil"
    if isinstance(actor, SystemActor):
        return actor.label
    token = actor if isinstance(actor, ApiToken) else getattr(actor, "api_token", None)
    if token is not None:
        return f"token {token.name} ({token.prefix})"
    if not getattr(actor, "is_authenticated", False):
        return "anonymous"
    return str(actor.get_username())


def audit_record(
    *,
    action: str,
    summary: str,
    actor: Any = None,
    ip: str | None = None,
    team: Team | None = None,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one record.  ``actor`` is a User, a request's token principal, an ApiToken, or None (Vigil)."""
    if action not in AuditEvent.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    token = actor if isinstance(actor, ApiToken) else getattr(actor, "api_token", None)
    person = actor if actor is not None and token is None and getattr(actor, "is_authenticated", False) else None
    if target is not None:
        target_type = target_type or target._meta.model_name or ""
        target_id = target_id or str(target.pk)
    return AuditEvent.objects.create(
        created_at=timezone.now(),
        actor=person,
        actor_token=token,
        actor_label=actor_label(actor)[:255],
        ip=ip or None,
        action=action,
        team=team,
        team_slug=team.slug if team is not None else "",
        target_type=target_type[:32],
        target_id=str(target_id)[:64],
        summary=summary[:500],
        reason=reason,
        details=details or {},
    )


def audit_login_lockout(sender: Any, request: Any = None, username: str = "", ip_address: str | None = None, **kwargs: Any) -> None:
    """django-axes locked a username out: one audit record per username and address per cool-off period."""
    cooloff = getattr(settings, "AXES_COOLOFF_TIME", None) or timedelta(minutes=15)
    recent = AuditEvent.objects.filter(
        action=AuditEvent.Action.LOGIN_LOCKED, target_type="username", target_id=(username or "")[:64], ip=ip_address or None
    ).filter(created_at__gte=timezone.now() - cooloff)
    if recent.exists():
        return
    audit_record(
        action=AuditEvent.Action.LOGIN_LOCKED,
        ip=ip_address,
        target_type="username",
        target_id=username or "",
        summary=f"login for {username or 'an empty username'} locked out after repeated wrong passwords",
    )
