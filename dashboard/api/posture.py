"""GET /api/v1/posture/ and /api/v1/posture/teams/: posture from daily snapshots, scoped by what the caller may read."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.models import TokenScope
from dashboard.selectors import posture
from dashboard.selectors.posture_teams import team_comparison

_DAYS = OpenApiParameter("days", int, description="the period: this many days ending today (default 30, at most 3650)")


def series_point(point: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": point["date"].isoformat(),
        "open": posture.open_by_severity(point),
        "new": int(point.get("new") or 0),
        "fixed": int(point.get("fixed") or 0),
        "reopened": int(point.get("reopened") or 0),
        "overdue": posture.overdue_total(point),
        "sla_compliance": posture.sla_compliance([point]),
        "mttr_days": posture.mttr_days([point]),
    }


class PostureView(APIView):
    """Open findings by severity, overdue, SLA compliance and mean time to fix, per day and over the period.

    Without ``team``: every team the caller may read, summed.  An unknown team and one the caller may not read
    both answer 404.
    """

    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}

    @extend_schema(parameters=[OpenApiParameter("team", str, description="a team's slug"), _DAYS], responses={200: dict})
    def get(self, request: Request) -> Response:
        period = posture.period_from({"days": request.query_params.get("days")})
        scope = posture.scope_for(user=request.user, team_slug=(request.query_params.get("team") or "").strip())
        points = posture.series(scope=scope, period=period)
        return Response(
            {
                "from": period.start.isoformat(),
                "to": period.end.isoformat(),
                "summary": {**posture.summary(points), "open": posture.open_now(scope=scope)},
                "series": [series_point(point) for point in points],
            }
        )


class PostureTeamsView(APIView):
    """The team comparison over the period: one row per team the caller may read."""

    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}

    @extend_schema(parameters=[_DAYS], responses={200: dict})
    def get(self, request: Request) -> Response:
        period = posture.period_from({"days": request.query_params.get("days")})
        rows = team_comparison(user=request.user, period=period)
        return Response({"from": period.start.isoformat(), "to": period.end.isoformat(), "teams": [row.as_json() for row in rows]})
