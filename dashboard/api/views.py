"""REST API views: read input, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from rest_framework import renderers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.authentication import request_token
from dashboard.api.gate import GateTextRenderer, counted_gate_check, gate_body
from dashboard.api.permissions import ScopePermission
from dashboard.api.uploads import declared_length, read_report
from dashboard.errors import ApplicationError
from dashboard.ingest.receive import report_record_refusal, report_submit
from dashboard.models import ReportStatus, TokenScope
from dashboard.selectors.report_progress import report_image_ref, report_wait, wait_seconds
from dashboard.selectors.teams import report_get
from dashboard.services.reports_summary import report_summary


class ReportCreateView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": TokenScope.INGEST}
    renderer_classes = [renderers.JSONRenderer, GateTextRenderer]

    def post(self, request: Request) -> Response:
        params = request.query_params
        wait = wait_seconds(params.get("wait"))
        token = request_token(request)
        user = None if token else request.user
        try:
            report, _ = report_submit(
                data=read_report(request),
                token=token,
                user=user,  # type: ignore[arg-type]
                team_slug=params.get("team", ""),
                format_name=params.get("format", ""),
                image=params.get("image", ""),
                stream=params.get("stream", ""),
                cluster=params.get("cluster", ""),
                idempotency_key=request.META.get("HTTP_IDEMPOTENCY_KEY", ""),
            )
        except ApplicationError as exc:
            if "report" not in exc.extra:  # refused before it was stored: record the refusal
                refused = report_record_refusal(
                    token=token,
                    user=user,  # type: ignore[arg-type]
                    message=exc.message,
                    size=declared_length(request),
                    params={key: str(params.get(key, "")) for key in ("format", "image")},
                )
                exc.extra = {**exc.extra, "report": str(refused.pk)}
            raise
        url = request.build_absolute_uri(f"/api/v1/reports/{report.pk}/")
        if wait is not None:
            return self._waited(request, report_wait(report=report, seconds=wait), url)
        return Response({"id": str(report.pk), "status": report.status, "url": url}, status=status.HTTP_202_ACCEPTED)

    def _waited(self, request: Request, report: Any, url: str) -> Response:
        """``?wait=``: the report's status and the gate's answer for its image once done; 202 as usual if not done in time."""
        if report.status not in (ReportStatus.DONE, ReportStatus.FAILED):
            return Response({"id": str(report.pk), "status": report.status, "url": url}, status=status.HTTP_202_ACCEPTED)
        body = report_summary(report, url=url)
        ref = report_image_ref(report) if report.status == ReportStatus.DONE else ""
        body["gate"] = gate_body(counted_gate_check(ref=ref, by=request.user, report=report), request=request) if ref else None
        return Response(body)


class ReportDetailView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.INGEST}

    def get(self, request: Request, pk: Any) -> Response:
        report = report_get(user=request.user, pk=pk)
        return Response(report_summary(report, url=request.build_absolute_uri()))
