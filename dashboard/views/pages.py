"""Server-rendered pages: read input, call selectors, render.  Login required everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.charts import trends
from dashboard.models import SEVERITY_ORDER
from dashboard.selectors import findings as finding_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.selectors.stale_images import days_unscanned, last_scans
from dashboard.services.team_settings import can_change_team_settings

PAGE_SIZE = 50


def _points(snapshots: Any) -> list[tuple[Any, dict[str, int]]]:
    return [(snap.date, snap.open_by_severity) for snap in snapshots]


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    rows = finding_selectors.team_overview(user=request.user)
    snapshots = team_selectors.snapshots_for(user=request.user)
    figure = trends.open_by_severity_over_time(_points(snapshots), title="Open findings by severity, all your teams")
    return render(
        request,
        "dashboard/overview.html",
        {
            "rows": rows,
            "severities": SEVERITY_ORDER,
            "figure": figure,
            "has_trend": bool(figure["data"]),
            "unowned": finding_selectors.unowned_count(user=request.user),
        },
    )


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_selectors.team_get(user=request.user, slug=slug)
    snapshots = team_selectors.snapshots_for(user=request.user, team=team)
    figure = trends.open_by_severity_over_time(_points(snapshots), title=f"{team.name}: open findings by severity")
    filters = finding_selectors.FindingFilters(team=team.slug, status="active")
    top = finding_selectors.finding_list(user=request.user, filters=filters)[:20]
    counts = finding_selectors.severity_counts(
        finding_selectors.finding_list(user=request.user, filters=finding_selectors.FindingFilters(team=team.slug))
    )
    return render(
        request,
        "dashboard/team.html",
        {
            "team": team,
            "images": finding_selectors.team_images(user=request.user, team=team),
            "findings": top,
            "counts": counts,
            "severities": SEVERITY_ORDER,
            "figure": figure,
            "has_trend": bool(figure["data"]),
            "reports": team_selectors.report_list(user=request.user).filter(team=team)[:10],
            "can_change_settings": can_change_team_settings(request.user, team),
        },
    )


@login_required
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    image = team_selectors.image_get(user=request.user, pk=pk)
    filters = finding_selectors.FindingFilters(image=str(image.pk), status="active")
    findings = finding_selectors.finding_list(user=request.user, filters=filters)
    page = Paginator(findings, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = finding_selectors.severity_counts(
        finding_selectors.finding_list(user=request.user, filters=finding_selectors.FindingFilters(image=str(image.pk)))
    )
    last_scan = last_scans([image.pk]).get(image.pk)
    return render(
        request,
        "dashboard/image.html",
        {
            "image": image,
            "last_scan": last_scan,
            "stale_days": days_unscanned(last_scan),
            "versions": image.versions.all()[:50],
            "page": page,
            "counts": counts,
            "severities": SEVERITY_ORDER,
            "figure": trends.severity_bar(counts, title="Open findings in this image"),
        },
    )
