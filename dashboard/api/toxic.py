"""GET /api/v1/toxic/?team=SLUG: toxic combinations the caller may read (selectors/toxic.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.models import TokenScope
from dashboard.selectors.teams import team_get
from dashboard.selectors.toxic import ToxicRow, toxic_combinations


def toxic_row(row: ToxicRow) -> dict[str, Any]:
    finding, sighting = row.finding, row.sighting
    return {
        "finding": finding.pk,
        "rule_id": finding.rule_id,
        "severity": finding.severity,
        "team": finding.team.slug if finding.team else None,
        "image": finding.image.name if finding.image else None,
        "package": finding.package_name,
        "fix": finding.fixed_version,
        "kev": finding.kev,
        "epss": finding.epss,
        "risk_score": finding.risk_score,
        "workload": {
            "cluster": sighting.cluster,
            "namespace": sighting.namespace,
            "kind": sighting.workload_kind,
            "name": sighting.workload_name,
            "tag": sighting.tag,
            "digest": sighting.digest,
            "last_seen": sighting.last_seen,
        },
        "conditions": {condition.name: {"holds": condition.holds, "why": condition.why} for condition in row.conditions},
        "holds": row.count,
        "why_first": row.why_first,
    }


class ToxicListView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}

    @extend_schema(
        summary="Toxic combinations: exploitable vulnerabilities running now, privileged or root workloads, runtime alerts",
        parameters=[OpenApiParameter("team", str, description="team slug (404 when the caller cannot read it)")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        slug = (request.query_params.get("team") or "").strip()
        team = team_get(user=request.user, slug=slug) if slug else None  # 404 for a team the caller cannot read
        rows = toxic_combinations(user=request.user, team=team)
        return Response({"count": len(rows), "results": [toxic_row(row) for row in rows]})
