"""A team's settings page: SLA days, four-eyes, digest webhook, champion, and its notification channels (champions and administrators)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from dashboard.errors import ApplicationError
from dashboard.models import (
    SEVERITY_ORDER,
    TEAM_EVENTS,
    Membership,
    NotificationChannel,
    NotificationEvent,
    Role,
    Team,
    TeamWebhook,
    TrackerKind,
)
from dashboard.selectors import notifications as notification_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.selectors.tickets import tracker_of
from dashboard.services.audit import client_ip
from dashboard.services.team_settings import can_change_team_settings, team_settings_update


@login_required
def team_settings(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_selectors.team_get(user=request.user, slug=slug)  # 404 for teams the person cannot read
    if not can_change_team_settings(request.user, team):
        raise PermissionDenied(f"only administrators and champions of {team.name} change its settings")
    if request.method == "POST":
        post = request.POST
        try:
            team_settings_update(
                team=team,
                by=request.user,
                sla_days={severity: post.get(f"sla_{severity}", "") for severity in SEVERITY_ORDER},
                four_eyes=post.get("four_eyes") == "on",
                webhook_url=post.get("webhook_url", ""),
                champion=post.get("champion", ""),
                ip=client_ip(request.META),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Settings saved.")
        return redirect("team-settings", slug=team.slug)
    hook = TeamWebhook.objects.filter(team=team).first()
    members = Membership.objects.filter(team=team).select_related("user").order_by("user__username")
    defaults = settings.VIGIL_SLA_DAYS
    sla = [(severity, (team.sla_days or {}).get(severity, ""), defaults.get(severity, "")) for severity in SEVERITY_ORDER]
    context = {"team": team, "sla": sla, "hook": hook, "members": members, **_notifications(team), **_tracker(team)}
    return render(request, "dashboard/team_settings.html", context)


def _notifications(team: Team) -> dict[str, object]:
    return {
        "channels": notification_selectors.channel_list(team=team),
        "recent": notification_selectors.recent_notifications(team=team),
        "events": [(event, NotificationEvent(event).label) for event in TEAM_EVENTS],
        "kinds": NotificationChannel.Kind.values,
        "roles": Role.values,
    }


def _tracker(team: Team) -> dict[str, object]:
    tracker = tracker_of(team_id=team.pk)
    hook_path = reverse("api:tracker-webhook", kwargs={"team": team.slug, "kind": tracker.kind}) if tracker else ""
    return {"tracker": tracker, "tracker_kinds": TrackerKind.choices, "webhook_url": settings.VIGIL_BASE_URL + hook_path if tracker else ""}
