"""A team's notification channels on its settings page: add one, switch it on or off, change its rules, remove it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.errors import ApplicationError
from dashboard.models import TEAM_EVENTS
from dashboard.selectors import notifications as notification_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.services.audit import client_ip
from dashboard.services.notification_channels import can_manage_notifications, channel_create, channel_delete, channel_update


@login_required
@require_POST
def channel_add(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_selectors.team_get(user=request.user, slug=slug)  # 404 for teams the person cannot read
    if not can_manage_notifications(request.user, team):
        raise PermissionDenied(f"only administrators and champions of {team.name} change its notifications")
    post = request.POST
    try:
        channel_create(
            team=team,
            by=request.user,
            kind=post.get("kind", ""),
            name=post.get("name", ""),
            url=post.get("url", ""),
            events=[event for event in post.getlist("events") if event in TEAM_EVENTS],
            roles=post.getlist("roles"),
            ip=client_ip(request.META),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Channel added.")
    return redirect("team-settings", slug=team.slug)


@login_required
@require_POST
def channel_change(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    channel = notification_selectors.channel_get(user=request.user, slug=slug, pk=pk)
    if not can_manage_notifications(request.user, channel.team):
        raise PermissionDenied(f"only administrators and champions of {channel.team.name} change its notifications")
    post = request.POST
    try:
        if post.get("action") == "delete":
            channel_delete(channel=channel, by=request.user, ip=client_ip(request.META))
        else:
            changes = {"events": [e for e in post.getlist("events") if e in TEAM_EVENTS], "active": post.get("active") == "on"}
            if post.get("url"):
                changes["url"] = post["url"]
            channel_update(channel=channel, by=request.user, changes=changes, ip=client_ip(request.META))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Channel removed." if post.get("action") == "delete" else "Channel saved.")
    return redirect("team-settings", slug=slug)
