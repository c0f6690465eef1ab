"""A team's settings page: SLA days, four-eyes, digest webhook, champion (champions and administrators)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from dashboard.errors import ApplicationError
from dashboard.models import SEVERITY_ORDER, Membership, TeamWebhook, TrackerKind
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
    tracker = tracker_of(team_id=team.pk)
    webhook_url = (
        settings.VIGIL_BASE_URL + reverse("api:tracker-webhook", kwargs={"team": team.slug, "kind": tracker.kind}) if tracker else ""
    )
    context = {"team": team, "sla": sla, "hook": hook, "members": members, "tracker": tracker, "tracker_kinds": TrackerKind.choices,
               "webhook_url": webhook_url}  # fmt: skip
    return render(request, "dashboard/team_settings.html", context)
