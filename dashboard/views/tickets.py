"""Tickets from pages: one finding or its fix group (finding page), a selection (queue), the team's tracker (settings)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.errors import ApplicationError
from dashboard.models import Ticket
from dashboard.selectors import queue as queue_selectors
from dashboard.selectors import teams as team_selectors
from dashboard.selectors.finding_detail import finding_detail as finding_detail_selector
from dashboard.services.audit import client_ip
from dashboard.services.tickets import ticket_request, tracker_configure


def _said(request: HttpRequest, ticket: Ticket) -> None:
    where = f" ({ticket.url})" if ticket.url else ""
    messages.success(request, f"Ticket {ticket.external_id or '#' + str(ticket.pk)} in {ticket.tracker.kind}: {ticket.state}{where}.")


@login_required
@require_POST
def finding_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    """A ticket for this finding, or (``scope=fix_group``) for every active finding the same upgrade fixes."""
    finding = finding_detail_selector(user=request.user, pk=pk).finding  # 404 for findings the person cannot read
    group = request.POST.get("scope") == "fix_group"
    try:
        ticket = ticket_request(by=request.user, ids=[] if group else [finding.pk], group_of=finding.pk if group else None,
                                ip=client_ip(request.META))  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        _said(request, ticket)
    return redirect("finding", pk=finding.pk)


@login_required
@require_POST
def findings_ticket(request: HttpRequest) -> HttpResponse:
    """The queue's selection as one ticket."""
    ids = queue_selectors.visible_ids(user=request.user, ids=[int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()][:1000])
    try:
        if not ids:
            raise ApplicationError("select the findings the ticket is about", code="empty")
        ticket = ticket_request(by=request.user, ids=ids, ip=client_ip(request.META))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        _said(request, ticket)
    target = request.POST.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "findings")


@login_required
@require_POST
def team_tracker(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_selectors.team_get(user=request.user, slug=slug)  # 404 for teams the person cannot read
    post = request.POST
    try:
        tracker_configure(
            team=team,
            by=request.user,
            kind=post.get("kind", ""),
            base_url=post.get("base_url", ""),
            project=post.get("project", ""),
            username=post.get("username", ""),
            secret=post.get("secret", ""),
            issue_type=post.get("issue_type", ""),
            ip=client_ip(request.META),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Tracker saved.")
    return redirect("team-settings", slug=team.slug)
