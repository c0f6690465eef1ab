"""Training nudges pages: the list, one nudge (why you see this), the champion's actions, and "did it help"."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from dashboard.charts import nudges as nudge_charts
from dashboard.errors import ApplicationError
from dashboard.models import NudgeState
from dashboard.models.access import visible_teams
from dashboard.selectors import nudges as nudge_selectors
from dashboard.selectors.access import can_triage
from dashboard.services import nudges as nudge_services
from dashboard.services.nudge_rules import NudgeConfig

PAGE_SIZE = 25
STATES = [*NudgeState.values, "active"]


@login_required
@require_GET
def nudge_list(request: HttpRequest) -> HttpResponse:
    team = (request.GET.get("team") or "").strip()[:64]
    state = request.GET.get("state", "active")
    state = state if state in STATES else ""
    nudges = nudge_selectors.nudge_list(user=request.user, team=team, state=state)
    page = Paginator(nudges, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/nudges.html",
        {
            "page": page,
            "team": team,
            "state": state,
            "states": STATES,
            "teams": visible_teams(request.user).order_by("name"),
            "query": query.urlencode(),
        },
    )


@login_required
@require_GET
def nudge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    nudge = nudge_selectors.nudge_get(user=request.user, pk=pk)
    return render(
        request,
        "dashboard/nudge.html",
        {
            "nudge": nudge,
            "findings": nudge_selectors.nudge_findings(user=request.user, nudge=nudge),
            "can_act": can_triage(request.user, nudge.team),
            "dismiss_reasons": nudge_services.DISMISS_REASONS,
            "snooze_days": nudge_services.SNOOZE_DAYS,
        },
    )


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@login_required
@require_POST
def nudge_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    nudge = nudge_selectors.nudge_get(user=request.user, pk=pk)
    back = _back(request, nudge_url := f"/nudges/{nudge.pk}/")
    try:
        if action == "open":
            nudge_services.nudge_open(nudge=nudge, by=request.user)
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse({"id": nudge.pk, "state": nudge.state, "label": nudge.get_state_display()})
        elif action == "done":
            nudge_services.nudge_complete(nudge=nudge, by=request.user, shared_with_team=request.POST.get("shared") == "1")
            messages.success(
                request, f"Thanks! “{nudge.topic.name}” is marked done; Vigil will show whether the findings stop coming back."
            )
        elif action == "snooze":
            days = int(request.POST.get("days") or 0) if (request.POST.get("days") or "").isdigit() else 0
            nudge_services.nudge_snooze(nudge=nudge, by=request.user, days=days)
            messages.success(request, f"Snoozed for {days} day{'s' if days != 1 else ''}.")
        elif action == "dismiss":
            reason = (request.POST.get("reason_other") or "").strip() or (request.POST.get("reason") or "").strip()
            nudge_services.nudge_dismiss(nudge=nudge, by=request.user, reason=reason)
            messages.success(request, "Dismissed. Thanks for telling us why.")
        else:
            messages.error(request, f"Unknown action {action[:30]!r}.")
            return redirect(nudge_url)
    except ApplicationError as exc:
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
        messages.error(request, exc.message)
        return redirect(nudge_url)
    return redirect(back)


@login_required
@require_GET
def nudge_impact(request: HttpRequest) -> HttpResponse:
    config = NudgeConfig.from_settings()
    now = timezone.now()
    rows = nudge_selectors.nudge_impact(user=request.user, now=now, window_days=config.impact_window_days)
    by_team = nudge_selectors.impact_by_topic(rows, per_team=True)
    by_topic = nudge_selectors.impact_by_topic(rows, per_team=False)
    managers = nudge_selectors.sees_engagement(user=request.user)
    figure = nudge_charts.before_after(
        [(row.topic_name, row.before.rate, row.after.rate) for row in by_topic],
        window_days=config.impact_window_days,
    )
    context: dict[str, Any] = {
        "rows": rows,
        "by_team": by_team,
        "by_topic": by_topic,
        "figure": figure,
        "window_days": config.impact_window_days,
        "managers": managers,
        "engagement": nudge_selectors.champion_engagement(user=request.user) if managers else [],
    }
    return render(request, "dashboard/nudge_impact.html", context)
