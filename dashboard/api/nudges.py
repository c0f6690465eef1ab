"""GET /api/v1/nudges/?team=SLUG: a team's training nudges, scoped by what the caller may read."""

from __future__ import annotations

from typing import Any

from rest_framework import generics, serializers

from dashboard.api.permissions import ScopePermission
from dashboard.errors import ApplicationError
from dashboard.models import Nudge, NudgeState, TokenScope
from dashboard.selectors.nudges import nudge_list
from dashboard.selectors.teams import team_get


class NudgeSerializer(serializers.ModelSerializer[Nudge]):
    team = serializers.CharField(source="team.slug", read_only=True)
    topic = serializers.CharField(source="topic.slug", read_only=True)
    topic_name = serializers.CharField(source="topic.name", read_only=True)
    findings = serializers.IntegerField(source="findings_count", read_only=True)
    module = serializers.SerializerMethodField()

    class Meta:
        model = Nudge
        fields = [
            "id",
            "team",
            "topic",
            "topic_name",
            "rule",
            "state",
            "reason",
            "findings",
            "module",
            "created_at",
            "opened_at",
            "completed_at",
            "shared_with_team",
            "snooze_until",
            "dismiss_reason",
        ]
        read_only_fields = fields

    def get_module(self, obj: Nudge) -> dict[str, Any] | None:
        module = obj.module
        if module is None:
            return None
        return {"title": module.title, "url": module.url, "provider": module.provider, "minutes": module.minutes}


class NudgeListView(generics.ListAPIView[Nudge]):
    """Filters: ``team`` (slug; 404 when the caller cannot read it) and ``state`` (new, opened, done, snoozed, dismissed, active)."""

    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}
    serializer_class = NudgeSerializer

    def get_queryset(self) -> Any:
        params = self.request.query_params
        team = (params.get("team") or "").strip()
        if team:
            team_get(user=self.request.user, slug=team)  # 404 for a team the caller cannot read
        state = (params.get("state") or "").strip()
        if state not in [*NudgeState.values, "active", ""]:
            raise ApplicationError(
                f"unknown state {state[:40]!r}; use one of: {', '.join([*NudgeState.values, 'active'])}", code="invalid_state"
            )
        return nudge_list(user=self.request.user, team=team, state=state)
