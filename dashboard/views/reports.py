"""Report pages: list, detail with what the report changed, and confirming held closures."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.errors import ApplicationError
from dashboard.ingest.receive import report_confirm_closures
from dashboard.selectors import access
from dashboard.selectors import report_outcomes as outcome_selectors
from dashboard.selectors import teams as team_selectors

PAGE_SIZE = 50


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(team_selectors.report_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    waiting = outcome_selectors.reports_waiting(user=request.user)
    return render(request, "dashboard/reports.html", {"page": page, "waiting": waiting})


@login_required
def report_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    report = team_selectors.report_get(user=request.user, pk=pk)
    held = outcome_selectors.held_findings(user=request.user, report=report)
    context = {
        "report": report,
        "outcomes": outcome_selectors.outcome_counts(user=request.user, report=report),
        "held": held,
        "held_more": len(report.held_closures or []) - len(held),
        "can_confirm": access.can_triage(request.user, report.team),
        "raw_retention_days": settings.VIGIL_RAW_RETENTION_DAYS,
    }
    return render(request, "dashboard/report.html", context)


@require_POST
@login_required
def report_confirm(request: HttpRequest, pk: Any) -> HttpResponse:
    report = team_selectors.report_get(user=request.user, pk=pk)
    # "all" confirms every held closure (more than the page lists); otherwise the ticked findings only.
    ids = None if request.POST.get("all") else [int(v) for v in request.POST.getlist("finding") if v.isdigit()]
    if ids == []:
        messages.error(request, "Select the findings to mark fixed: nothing was changed.")
        return redirect("report", pk=report.pk)
    try:
        fixed = report_confirm_closures(report=report, user=request.user, ids=ids)  # type: ignore[arg-type]
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{fixed} finding{'s' if fixed != 1 else ''} marked fixed.")
    return redirect("report", pk=report.pk)
