"""GET and PUT /api/v1/policies/{team}/: a team's enforcement policy (PUT: partial changes, team admins only)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.errors import ApplicationError
from dashboard.models import TokenScope
from dashboard.selectors.enforcement import policy_for, policy_row
from dashboard.selectors.teams import team_get
from dashboard.services.audit import client_ip
from dashboard.services.policies import policy_update


def policy_body(*, team: Any) -> dict[str, Any]:
    row = policy_row(team_id=team.pk)
    policy = policy_for(team_id=team.pk)
    return {
        "team": team.slug,
        #: False: the team has no policy of its own yet and the organisation default decides.
        "own": row is not None,
        "version": policy.version,
        "mode": policy.mode,
        "namespace_modes": dict(policy.namespace_modes),
        **policy.rules(),
        "unknown_image": policy.unknown_image,
        "updated_at": row.updated_at.isoformat() if row is not None else None,
        "updated_by": row.updated_by_label if row is not None else None,
    }


class PolicyView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ, "PUT": TokenScope.ADMIN}

    def get(self, request: Request, team: str) -> Response:
        return Response(policy_body(team=team_get(user=request.user, slug=team)))

    def put(self, request: Request, team: str) -> Response:
        found = team_get(user=request.user, slug=team)  # 404 for a team the caller cannot read
        if not isinstance(request.data, dict):
            raise ApplicationError('send a JSON object, e.g. {"mode": "enforce"}', code="invalid")
        changes = {key: value for key, value in request.data.items() if key != "reason"}
        reason = request.data.get("reason") or ""
        if not isinstance(reason, str):
            raise ApplicationError("reason: must be text", code="invalid")
        policy_update(team=found, by=request.user, changes=changes, reason=reason, ip=client_ip(request.META))
        return Response(policy_body(team=found))
