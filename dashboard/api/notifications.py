"""A team's notification channels: GET and POST /api/v1/teams/{team}/notification-channels/, PATCH and DELETE
/api/v1/teams/{team}/notification-channels/{id}/.  Webhook URLs are secrets: answers show them masked."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.errors import ApplicationError
from dashboard.models import TokenScope
from dashboard.selectors.notifications import channel_get, channel_list
from dashboard.selectors.teams import team_get
from dashboard.services.audit import client_ip
from dashboard.services.notification_channels import channel_create, channel_delete, channel_state, channel_update


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ApplicationError('send a JSON object, e.g. {"kind": "webhook", "name": "chat", "url": "https://…"}', code="invalid")
    return dict(request.data)


class NotificationChannelListView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ, "POST": TokenScope.ADMIN}

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="A team's notification channels (URLs masked)")
    def get(self, request: Request, team: str) -> Response:
        found = team_get(user=request.user, slug=team)  # 404 for a team the caller cannot read
        return Response({"results": [channel_state(channel) for channel in channel_list(team=found)]})

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT}, summary="Add a notification channel")
    def post(self, request: Request, team: str) -> Response:
        found = team_get(user=request.user, slug=team)
        data = _body(request)
        unknown = sorted(set(data) - {"kind", "name", "url", "events", "roles"})
        if unknown:
            raise ApplicationError(f"unknown fields: {', '.join(unknown)}", code="invalid")
        channel = channel_create(
            team=found, by=request.user, kind=str(data.get("kind", "")), name=data.get("name", ""), url=data.get("url", ""),
            events=data.get("events", []), roles=data.get("roles", []), ip=client_ip(request.META),
        )  # fmt: skip
        return Response(channel_state(channel), status=201)


class NotificationChannelDetailView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"PATCH": TokenScope.ADMIN, "DELETE": TokenScope.ADMIN}

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, summary="Change a notification channel")
    def patch(self, request: Request, team: str, pk: int) -> Response:
        channel = channel_get(user=request.user, slug=team, pk=pk)
        channel = channel_update(channel=channel, by=request.user, changes=_body(request), ip=client_ip(request.META))
        return Response(channel_state(channel))

    @extend_schema(responses={204: None}, summary="Remove a notification channel")
    def delete(self, request: Request, team: str, pk: int) -> Response:
        channel_delete(channel=channel_get(user=request.user, slug=team, pk=pk), by=request.user, ip=client_ip(request.META))
        return Response(status=204)
