"""The triage queue, the finding page, bulk actions, undo, CSV export, risk acceptances and triage rules.

Thin: read the request, call one selector or service, render or redirect.  Bulk actions
answer JSON to the queue's script (static/vigil/queue.js) and redirect without it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.errors import ApplicationError
from dashboard.models import FindingEvent, Kind, Membership, RiskAcceptance, Severity, Status, Stream, TriageRule
from dashboard.models.access import visible_teams
from dashboard.selectors import acceptances as acceptance_selectors
from dashboard.selectors import access
from dashboard.selectors import queue as queue_selectors
from dashboard.selectors.finding_detail import finding_detail as finding_detail_selector
from dashboard.selectors.findings import SLA_STATES, SORTS, FindingFilters
from dashboard.selectors.running import finding_sightings
from dashboard.selectors.tickets import ticket_rows, tracker_of
from dashboard.selectors.would_block import verdict_for_page
from dashboard.services import finding_updates, risk_acceptance, triage_rules, triage_undo
from dashboard.services.audit import client_ip
from dashboard.services.triage import TRANSITIONS, BulkResult
from scanners import registry

LAST_BULK = "vigil_last_bulk"


def queue_filters(params: Any) -> FindingFilters:
    """The queue's filters from a query string; without a status, the queue shows what needs work."""
    filters = FindingFilters.from_query(params)
    if "status" not in params and not filters.report:  # a report's outcome is shown whatever the status now
        filters = filters.replace(status="active")
    return filters


def _assignable(user: Any) -> list[Any]:
    """People a finding of the user's teams can be assigned to."""
    teams = visible_teams(user)
    return list(
        get_user_model()
        .objects.filter(pk__in=Membership.objects.filter(team__in=teams).values("user_id"), is_active=True)
        .order_by("username")[:500]
    )


@login_required
@require_GET
def finding_list(request: HttpRequest) -> HttpResponse:
    filters = queue_filters(request.GET)
    page = queue_selectors.queue_page(user=request.user, filters=filters, cursor=request.GET.get("cursor", "")[:200])
    query = filters.as_query()
    return render(
        request,
        "dashboard/findings.html",
        {
            "page": page,
            "filters": filters,
            "query": query,
            "query_string": urlencode(query),
            "teams": list(visible_teams(request.user).order_by("name")),
            "severities": Severity.values,
            "statuses": Status.values,
            "kinds": Kind.values,
            "streams": Stream.values,
            "sources": registry.format_names(),
            "sla_states": SLA_STATES,
            "sorts": list(SORTS),
            "members": _assignable(request.user),
            "can_triage_any": access.can_triage_somewhere(request.user),
            "bulk_max": settings.VIGIL_BULK_MAX,
            "default_expires": timezone.localdate() + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_DAYS),
            "max_expires": timezone.localdate() + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_MAX_DAYS),
            "last_bulk": request.session.pop(LAST_BULK, None),
            "tickets": ticket_rows(finding_ids=[f.pk for f in page.findings]),
        },
    )


@login_required
@require_GET
def finding_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered queue as CSV, safe to open in a spreadsheet (formulas are neutralised)."""
    return csv_response(queue_selectors.export_rows(user=request.user, filters=queue_filters(request.GET)))


def csv_response(rows: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(queue_selectors.csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{queue_selectors.export_filename()}"'
    return response


@login_required
@require_GET
def finding_detail(request: HttpRequest, pk: int) -> HttpResponse:
    detail = finding_detail_selector(user=request.user, pk=pk)
    finding = detail.finding
    actions = access.team_actions(request.user, finding.team)
    today = timezone.localdate()
    return render(
        request,
        "dashboard/finding.html",
        {
            "finding": finding,
            "detail": detail,
            "events": detail.events,
            "occurrences": detail.occurrences,
            "can_triage": access.TRIAGE in actions,
            "can_accept_risk": access.ACCEPT_RISK in actions,
            "next_statuses": [s for s in Status.values if s in TRANSITIONS[finding.status]],
            "default_expires": today + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_DAYS),
            "max_expires": today + dt.timedelta(days=settings.VIGIL_RISK_ACCEPTANCE_MAX_DAYS),
            "image_pattern": f"{finding.image.registry}/*" if finding.image and finding.image.registry else "",
            "running": finding_sightings(finding=finding, user=request.user),
            "running_days": settings.VIGIL_RUNNING_DAYS,
            "verdict": verdict_for_page(finding),
            "tickets": ticket_rows(finding_ids=[finding.pk]).get(finding.pk, []),
            "has_tracker": access.TRIAGE in actions and finding.team_id is not None and tracker_of(team_id=finding.team_id) is not None,
        },
    )


def _back(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else fallback


@login_required
@require_POST
def finding_update(request: HttpRequest, pk: int) -> HttpResponse:
    """The finding page's forms: change status (reason, expiry), assign, comment."""
    finding = finding_detail_selector(user=request.user, pk=pk).finding
    post = request.POST
    try:
        finding_updates.finding_update(
            finding=finding,
            by=request.user,
            status=post.get("status", ""),
            reason=post.get("reason", ""),
            expires=finding_updates.parse_expires(post.get("expires")) if post.get("status") == Status.RISK_ACCEPTED else None,
            set_assignee="assignee" in post,
            assignee=post.get("assignee") or None,
            comment=post.get("comment", ""),
            ip=client_ip(request.META),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Saved.")
    return redirect("finding", pk=finding.pk)


@login_required
@require_POST
def finding_accept_scope(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept the risk of this vulnerability in every image of the team matching a pattern, now and later."""
    finding = finding_detail_selector(user=request.user, pk=pk).finding
    scope = risk_acceptance.Scope(rule_id=finding.rule_id, image_pattern=request.POST.get("image_pattern", "").strip()[:512])
    try:
        result = risk_acceptance.acceptance_request(
            ids=[finding.pk],
            by=request.user,
            reason=request.POST.get("reason", ""),
            expires=finding_updates.parse_expires(request.POST.get("expires")),
            scope=scope,
            team=finding.team,
            ip=client_ip(request.META),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, result.message)
    return redirect("finding", pk=finding.pk)


@login_required
@require_POST
def event_undo(request: HttpRequest, pk: int, event_pk: int) -> HttpResponse:
    finding = finding_detail_selector(user=request.user, pk=pk).finding
    event = get_object_or_404(FindingEvent, pk=event_pk, finding=finding)
    try:
        triage_undo.event_undo(event=event, by=request.user, reason=request.POST.get("reason", ""), ip=client_ip(request.META))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Undone.")
    return redirect("finding", pk=finding.pk)


def _bulk_answer(request: HttpRequest, result: BulkResult | None, error: str = "") -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    back = _back(request, "/findings/")
    if wants_json:
        if result is None:
            return JsonResponse({"error": {"code": "invalid", "message": error}}, status=400)
        return JsonResponse(
            {
                "message": result.message,
                "changed": result.changed,
                "batch": str(result.batch),
                "undo_url": f"/findings/bulk/{result.batch}/undo/" if result.changed else "",
                "pending_acceptances": result.pending_acceptances,
                # What the changed rows show now: the queue updates them in place.
                "rows": queue_selectors.row_states(user=request.user, ids=result.changed),
            }
        )
    if result is None:
        messages.error(request, error)
    else:
        request.session[LAST_BULK] = {
            "message": result.message,
            "undo_url": f"/findings/bulk/{result.batch}/undo/" if result.changed else "",
        }
    return redirect(back)


@login_required
@require_POST
def finding_bulk(request: HttpRequest) -> HttpResponse:
    """One action and one reason for the selected findings, or for everything matching the queue's filters."""
    post = request.POST
    # "assign to me": a row's button names its finding; the bulk form's applies to the selection.
    assign_me = post.get("assign_me", "")
    me = request.user.get_username()
    try:
        if assign_me.isdigit():
            ids = queue_selectors.visible_ids(user=request.user, ids=[int(assign_me)])
        elif post.get("scope") == "all":
            filters = queue_filters(_query_dict(post.get("query", "")))
            ids = queue_selectors.matching_ids(user=request.user, filters=filters, limit=settings.VIGIL_BULK_MAX)
        else:
            ids = queue_selectors.visible_ids(user=request.user, ids=[int(v) for v in post.getlist("ids") if v.isdigit()][:100000])
        result = finding_updates.findings_bulk(
            ids=ids,
            by=request.user,
            action="assign" if assign_me else post.get("action", ""),
            reason=post.get("reason", ""),
            status=post.get("status", ""),
            assignee=me if assign_me or post.get("assignee") == "me" else post.get("assignee") or None,
            expires=finding_updates.parse_expires(post.get("expires")),
            ip=client_ip(request.META),
        )
    except ApplicationError as exc:
        return _bulk_answer(request, None, exc.message)
    return _bulk_answer(request, result)


def _query_dict(query: str) -> QueryDict:
    return QueryDict(query[:4000])


@login_required
@require_POST
def bulk_undo(request: HttpRequest, batch: uuid.UUID) -> HttpResponse:
    try:
        result = triage_undo.batch_undo(batch=batch, by=request.user, ip=client_ip(request.META))
    except ApplicationError as exc:
        return _bulk_answer(request, None, exc.message)
    return _bulk_answer(request, result)


# --- risk acceptances ---------------------------------------------------------------------------


@login_required
@require_GET
def acceptance_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    acceptances = list(acceptance_selectors.acceptance_list(user=request.user, state=state)[:200])
    decidable = acceptance_selectors.acceptances_decidable(user=request.user, acceptances=acceptances)
    return render(
        request,
        "dashboard/triage_acceptances.html",
        {"acceptances": acceptances, "decidable": decidable, "state": state, "states": RiskAcceptance.State.values},
    )


@login_required
@require_POST
def acceptance_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    acceptance = acceptance_selectors.acceptance_get(user=request.user, pk=pk)
    reason = request.POST.get("reason", "")
    try:
        if decision == "approve":
            result = risk_acceptance.acceptance_approve(acceptance=acceptance, by=request.user, reason=reason, ip=client_ip(request.META))
            messages.success(request, f"Risk acceptance #{acceptance.pk} approved: {result.message}")
        else:
            risk_acceptance.acceptance_reject(acceptance=acceptance, by=request.user, reason=reason, ip=client_ip(request.META))
            messages.success(request, f"Risk acceptance #{acceptance.pk} rejected.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(_back(request, "/acceptances/"))


# --- triage rules -------------------------------------------------------------------------------


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        post = request.POST
        slug = post.get("team", "")
        team = visible_teams(request.user).filter(slug=slug).first() if slug else None
        try:
            if slug and team is None:
                raise ApplicationError(f"no team {slug!r}", code="unknown_team")
            rule = triage_rules.rule_create(
                by=request.user,
                team=team,
                name=post.get("name", ""),
                action=post.get("action", ""),
                reason=post.get("reason", ""),
                match_rule_id=post.get("match_rule_id", ""),
                match_package=post.get("match_package", ""),
                match_image=post.get("match_image", ""),
                match_path=post.get("match_path", ""),
                match_kind=post.get("match_kind", ""),
                accept_until=finding_updates.parse_expires(post.get("accept_until")),
                severity=post.get("severity", ""),
                match_vex_not_affected=post.get("match_vex_not_affected") == "on",
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Rule #{rule.pk} created: it applies to findings as reports arrive.")
        return redirect("triage-rules")
    return render(
        request,
        "dashboard/triage_rules.html",
        {
            "rules": acceptance_selectors.rule_list(user=request.user),
            "teams": list(visible_teams(request.user).order_by("name")),
            "actions": TriageRule.Action.values,
            "kinds": Kind.values,
            "severities": Severity.values,
            "is_staff": request.user.is_staff,
        },
    )


@login_required
@require_POST
def rule_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    rule = acceptance_selectors.rule_get(user=request.user, pk=pk)
    try:
        if action == "apply":
            outcome = triage_rules.rule_apply_existing(rule=rule, by=request.user)
            count = len(outcome.false_positive) + len(outcome.accepted) + len(outcome.severity)
            messages.success(request, f"Rule #{rule.pk} applied to {count} finding{'s' if count != 1 else ''}.")
        else:
            triage_rules.rule_set_enabled(rule=rule, by=request.user, enabled=action == "enable")
            messages.success(request, f"Rule #{rule.pk} {'enabled' if rule.enabled else 'disabled'}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("triage-rules")
