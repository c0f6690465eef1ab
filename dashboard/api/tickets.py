"""POST /api/v1/tickets/ (ask for a ticket in the team's tracker) and the trackers' webhooks."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.errors import ApplicationError
from dashboard.models import Ticket, TokenScope
from dashboard.services.audit import client_ip
from dashboard.services.tickets import ticket_request
from dashboard.services.tickets_webhooks import tracker_webhook


def ticket_body(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "state": ticket.state,
        "tracker": ticket.tracker.kind,
        "key": ticket.external_id or None,
        "url": ticket.url or None,
        "title": ticket.title,
        "findings": sorted(ticket.links.values_list("finding_id", flat=True)),
        "error": ticket.error or None,
    }


def _ids(data: Any) -> tuple[list[int], int | None]:
    if not isinstance(data, dict):
        raise ApplicationError('send {"findings": [ids]} or {"fix_group": finding id}', code="invalid")
    findings, group = data.get("findings"), data.get("fix_group")
    if group is not None:
        if not isinstance(group, int) or isinstance(group, bool):
            raise ApplicationError("fix_group: a finding id", code="invalid")
        return [], group
    if not isinstance(findings, list) or not findings or not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in findings):
        raise ApplicationError("findings: a non-empty list of finding ids", code="invalid")
    return findings[:1000], None


class TicketCreateView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": TokenScope.ADMIN}

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: OpenApiTypes.OBJECT}, summary="Ask for a ticket in the team's tracker")
    def post(self, request: Request) -> Response:
        ids, group = _ids(request.data)
        ticket = ticket_request(by=request.user, ids=ids, group_of=group, ip=client_ip(request.META))
        ticket.refresh_from_db()
        return Response(ticket_body(ticket), status=202)


class TrackerWebhookView(APIView):
    """No login: the tracker proves itself by its signature or token (403 otherwise)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="A tracker's webhook")
    def post(self, request: Request, team: str, kind: str) -> Response:
        outcome = tracker_webhook(
            team_slug=team,
            kind=kind,
            headers=dict(request.headers),
            body=request.body,
        )
        return Response({"outcome": outcome})
