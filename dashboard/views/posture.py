"""Posture pages for managers (and champions, for their own team): read the period and scope, call selectors, render.

Everything on these pages comes from daily snapshots; a team the reader may not see answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from dashboard.charts import posture as charts
from dashboard.charts import trends
from dashboard.errors import ApplicationError
from dashboard.models import SNAPSHOT_SEVERITIES
from dashboard.models.access import visible_teams
from dashboard.models.posture import AGE_BUCKETS
from dashboard.selectors import posture
from dashboard.selectors.posture_export import SERIES, export_rows
from dashboard.selectors.posture_page import STREAMS, headlines, shift_left
from dashboard.selectors.posture_teams import team_comparison
from dashboard.selectors.queue import csv_lines


def _request_scope(request: HttpRequest) -> tuple[posture.Scope, posture.Period, dict[str, str]]:
    """The scope (404 for a team the reader may not see) and the period; raises ApplicationError on a bad period."""
    scope = posture.scope_for(user=request.user, team_slug=(request.GET.get("team") or "").strip())
    period = posture.period_from(request.GET)
    keep = {name: request.GET[name] for name in ("team", "days", "from", "to") if request.GET.get(name)}
    return scope, period, keep


def _context(request: HttpRequest, active: str, scope: posture.Scope, period: posture.Period, keep: dict[str, str]) -> dict[str, Any]:
    custom = bool(keep.get("from") or keep.get("to"))
    return {
        "active": active,
        "scope": scope,
        "period": period,
        "query": urlencode(keep),
        "team_query": urlencode({k: v for k, v in keep.items() if k != "team"}),
        "periods": [(days, not custom and period.days == days) for days in posture.PERIODS],
        "custom": custom,
        "teams": list(visible_teams(request.user).order_by("name").values_list("slug", "name")),
        "exports": SERIES,
    }


def _charts(figures: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(element id, data element id, figure) for templates/dashboard/_posture_charts.html."""
    return [(name, f"{name}-data", figure) for name, figure in figures.items()]


def _bad_period(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return render(request, "dashboard/posture_error.html", {"message": error.message}, status=400)


Scoped = Callable[[HttpRequest, posture.Scope, posture.Period, dict[str, str]], HttpResponseBase]


def _scoped(view: Scoped) -> Callable[[HttpRequest], HttpResponseBase]:
    """Reads the scope and period for ``view``; a bad period (or series) answers the 400 page."""

    @login_required
    @require_GET
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponseBase:
        try:
            scope, period, keep = _request_scope(request)
            return view(request, scope, period, keep)
        except ApplicationError as error:
            return _bad_period(request, error)

    return wrapper


@_scoped
def posture_overview(request: HttpRequest, scope: posture.Scope, period: posture.Period, keep: dict[str, str]) -> HttpResponse:
    points = posture.series(scope=scope, period=period)
    previous = posture.series(scope=scope, period=period.previous)
    last_day = points[-1]["date"] if points else None
    figures = {
        "open-chart": trends.open_by_severity_over_time(
            [(p["date"], posture.open_by_severity(p)) for p in points], title=f"{scope.label}: open findings by severity"
        ),
        "flow-chart": charts.new_versus_fixed([(p["date"], int(p["new"] or 0), int(p["fixed"] or 0)) for p in points]),
        "ttf-chart": charts.time_to_fix(
            [(p["date"], {s: (int(p[f"ttf_n_{s}"] or 0), float(p[f"ttf_days_{s}"] or 0)) for s in SNAPSHOT_SEVERITIES}) for p in points]
        ),
        "sla-chart": charts.sla_compliance([_sla_point(p) for p in points]),
        "age-chart": charts.open_by_age(posture.age_buckets(scope=scope, day=last_day), [name for name, _, _ in AGE_BUCKETS]),
    }
    context = _context(request, "overview", scope, period, keep)
    context |= {"headlines": headlines(points, previous), "figures": _charts(figures), "has_data": bool(points), "last_day": last_day}
    return render(request, "dashboard/posture.html", context)


def _sla_point(p: dict[str, Any]) -> tuple[Any, int, int, int, int]:
    return (
        p["date"],
        int(p["fixed_with_due"] or 0),
        int(p["fixed_in_sla"] or 0),
        sum(posture.open_by_severity(p).values()),
        posture.overdue_total(p),
    )


def queue_link(**filters: str) -> str:
    return f"{reverse('findings')}?{urlencode({k: v for k, v in filters.items() if v})}"


@_scoped
def posture_teams(request: HttpRequest, scope: posture.Scope, period: posture.Period, keep: dict[str, str]) -> HttpResponse:
    rows = team_comparison(user=request.user, period=period)
    links = {
        row.slug: {
            "critical": queue_link(team=row.slug, status="active", severity="critical"),
            "high": queue_link(team=row.slug, status="active", severity="high"),
            "overdue": queue_link(team=row.slug, sla="overdue"),
            "fixed": queue_link(team=row.slug, status="fixed", fixed_since=period.start.isoformat()),
            "open": queue_link(team=row.slug, status="active"),
        }
        for row in rows
    }
    context = _context(request, "teams", scope, period, keep)
    context |= {
        "rows": [(row, links[row.slug]) for row in rows],
        "figures": _charts({"heatmap-chart": charts.team_heatmap([(row.name, row.open) for row in rows])}),
    }
    return render(request, "dashboard/posture_teams.html", context)


@_scoped
def posture_shift_left(request: HttpRequest, scope: posture.Scope, period: posture.Period, keep: dict[str, str]) -> HttpResponse:
    rows, daily = shift_left(scope=scope, period=period)
    context = _context(request, "shift_left", scope, period, keep)
    context |= {
        "rows": rows,
        "streams": STREAMS,
        "figures": _charts(
            {
                "shares-chart": charts.shift_left_shares([(f"{row.team_name}: {row.label}", row.shares) for row in rows[:40]]),
                "trend-chart": charts.shift_left_trend(daily),
            }
        ),
    }
    return render(request, "dashboard/posture_shift_left.html", context)


@_scoped
def posture_export(request: HttpRequest, scope: posture.Scope, period: posture.Period, keep: dict[str, str]) -> StreamingHttpResponse:
    """One series as CSV: ``series`` is open, flow, time_to_fix, sla, age, teams or shift_left."""
    series = request.GET.get("series", "")
    if series not in SERIES:
        raise ApplicationError(f"series must be one of: {', '.join(SERIES)}", code="invalid_series")
    rows = export_rows(user=request.user, scope=scope, period=period, series=series)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    name = f"vigil-posture-{series}-{scope.team.slug if scope.team else 'all'}-{period.start}-{period.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
