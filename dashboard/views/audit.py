"""The audit log page: administrators see every record, managers the records of the teams granted to them."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.models import AuditEvent
from dashboard.selectors.access import can_view_audit
from dashboard.selectors.audit import AuditFilters, audit_list

PAGE_SIZE = 50


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    if not can_view_audit(request.user):
        raise PermissionDenied("the audit log is for administrators and managers")
    filters = AuditFilters.from_query(request.GET)
    page = Paginator(audit_list(user=request.user, filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/audit.html",
        {"page": page, "filters": filters, "actions": AuditEvent.Action.choices, "query": query.urlencode()},
    )
