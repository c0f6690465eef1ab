"""The toxic combinations page (selectors/toxic.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.models.access import visible_teams
from dashboard.selectors.teams import team_get
from dashboard.selectors.toxic import toxic_combinations


@login_required
def toxic_list(request: HttpRequest) -> HttpResponse:
    slug = (request.GET.get("team") or "").strip()
    team = team_get(user=request.user, slug=slug) if slug else None
    rows = toxic_combinations(user=request.user, team=team)
    return render(request, "dashboard/toxic.html", {"rows": rows, "team": team, "teams": visible_teams(request.user)})
