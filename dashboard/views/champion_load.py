"""Champion load: each champion's open and overdue work, teams without a champion, the nudge backlog; and its CSV."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.selectors import champion_load as champion_selectors
from dashboard.views.csv_downloads import csv_download


@login_required
@require_GET
def champion_load(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/champion_load.html", {"table": champion_selectors.champion_load(user=request.user)})


@login_required
@require_GET
def champion_load_export(request: HttpRequest) -> StreamingHttpResponse:
    return csv_download(champion_selectors.champion_rows(champion_selectors.champion_load(user=request.user)), name="champion-load")
