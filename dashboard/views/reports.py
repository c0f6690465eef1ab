"""Report pages: list, detail with status and counts, and confirming held closures."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.errors import ApplicationError
from dashboard.selectors import teams as team_selectors
from dashboard.services.reports import report_confirm_closures

PAGE_SIZE = 50


@login_required
def report_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(team_selectors.report_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dashboard/reports.html", {"page": page})


@login_required
def report_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    report = team_selectors.report_get(user=request.user, pk=pk)
    return render(request, "dashboard/report.html", {"report": report})


@require_POST
@login_required
def report_confirm(request: HttpRequest, pk: Any) -> HttpResponse:
    report = team_selectors.report_get(user=request.user, pk=pk)
    try:
        fixed = report_confirm_closures(report=report, user=request.user)  # type: ignore[arg-type]
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{fixed} finding{'s' if fixed != 1 else ''} marked fixed.")
    return redirect("report", pk=report.pk)
