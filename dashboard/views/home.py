"""The champion's home: what needs attention today, each with a count and a link to the filtered queue."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.models.access import visible_teams
from dashboard.selectors.home import EXPIRING_DAYS, RECENT_DAYS, home_summary
from dashboard.selectors.stale_images import STALE_DAYS
from dashboard.services.home import home_visit


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    slug = (request.GET.get("team") or "").strip()[:64]
    teams = list(visible_teams(request.user).order_by("name")[:200])
    chosen = [t for t in teams if t.slug == slug]
    # A champion of one team sees that team; people with several choose (all of them by default).
    team = chosen[0] if chosen else (teams[0] if len(teams) == 1 else None)
    since = home_visit(user=request.user)  # type: ignore[arg-type]
    summary = home_summary(user=request.user, since=since, team=team, teams=teams)
    return render(
        request,
        "dashboard/home.html",
        {"summary": summary, "team": team, "expiring_days": EXPIRING_DAYS, "recent_days": RECENT_DAYS, "stale_days": STALE_DAYS},
    )
