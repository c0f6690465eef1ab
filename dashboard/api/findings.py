"""The findings API: list, detail, update (PATCH), bulk update and CSV export.

Reading needs a ``read`` token (or a session); changing needs an ``admin`` token or a
person's session, and then the same role rules as the UI (dashboard.selectors.access).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import QueryDict, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.api.serializers import BulkResultSerializer, FindingBulkSerializer, FindingSerializer, FindingUpdateSerializer
from dashboard.models import Finding, Status, TokenScope
from dashboard.selectors import queue as queue_selectors
from dashboard.selectors.findings import FindingFilters, finding_list
from dashboard.services import finding_updates
from dashboard.services.audit import client_ip


class FindingListView(generics.ListAPIView[Finding]):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}
    serializer_class = FindingSerializer

    def get_queryset(self) -> Any:
        return finding_list(user=self.request.user, filters=FindingFilters.from_query(self.request.query_params))


class FindingDetailView(generics.RetrieveAPIView[Finding]):
    """GET one finding; PATCH its status (reason, expires), assignee or add a comment."""

    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ, "PATCH": TokenScope.ADMIN}
    serializer_class = FindingSerializer

    def get_queryset(self) -> Any:
        return Finding.objects.visible_to(self.request.user).select_related("team", "image", "assignee")

    @extend_schema(
        request=FindingUpdateSerializer, responses={200: FindingSerializer}, summary="Change a finding's status, assignee, or comment"
    )
    def patch(self, request: Request, pk: int) -> Response:
        finding = self.get_object()
        data = FindingUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        updated = finding_updates.finding_update(
            finding=finding,
            by=request.user,
            status=values.get("status", ""),
            reason=values.get("reason", ""),
            expires=values.get("expires"),
            set_assignee="assignee" in values,
            assignee=values.get("assignee") or None,
            comment=values.get("comment", ""),
            ip=client_ip(request.META),
        )
        # A risk acceptance waiting for a second person's approval (four-eyes) is accepted, not yet applied: 202.
        waiting = values.get("status") == Status.RISK_ACCEPTED and updated.status != Status.RISK_ACCEPTED
        return Response(FindingSerializer(self.get_queryset().get(pk=updated.pk)).data, status=202 if waiting else 200)


class FindingBulkView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": TokenScope.ADMIN}

    @extend_schema(request=FindingBulkSerializer, responses={200: BulkResultSerializer}, summary="One action for many findings")
    def post(self, request: Request) -> Response:
        data = FindingBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values.get("filter") is not None:
            query = QueryDict(mutable=True)
            query.update(values["filter"])
            ids = queue_selectors.matching_ids(user=request.user, filters=FindingFilters.from_query(query), limit=settings.VIGIL_BULK_MAX)
        else:
            ids = queue_selectors.visible_ids(user=request.user, ids=values["ids"])
        result = finding_updates.findings_bulk(
            ids=ids,
            by=request.user,
            action=values["action"],
            reason=values.get("reason", ""),
            status=values.get("status", ""),
            assignee=values.get("assignee"),
            expires=values.get("expires"),
            ip=client_ip(request.META),
        )
        return Response(
            {
                "message": result.message,
                "changed": result.changed,
                "skipped": result.skipped,
                "batch": str(result.batch),
                "pending_acceptances": result.pending_acceptances,
            }
        )


class FindingExportView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}

    @extend_schema(
        summary="The filtered findings as CSV (spreadsheet formulas neutralised)",
        responses={(200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR)},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        rows = queue_selectors.export_rows(user=request.user, filters=FindingFilters.from_query(request.query_params))
        response = StreamingHttpResponse(queue_selectors.csv_lines(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{queue_selectors.export_filename()}"'
        return response
