from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from dashboard.models import Finding, Status
from dashboard.services import risk
from dashboard.services.finding_updates import BULK_ACTIONS


class FindingSerializer(serializers.ModelSerializer[Finding]):
    team = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()
    package = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    risk_parts = serializers.SerializerMethodField()
    sla = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id",
            "status",
            "severity",
            "rule_id",
            "kind",
            "source",
            "stream",
            "title",
            "team",
            "image",
            "package",
            "resource",
            "cvss",
            "epss",
            "kev",
            "cwe",
            "due_date",
            "sla",
            "kev_due_date",
            "epss_percentile",
            "exposed",
            "risk_score",
            "risk_parts",
            "assignee",
            "occurrences",
            "first_seen",
            "last_seen",
            "fixed_at",
            "status_hint",
            "fingerprint",
        ]
        read_only_fields = fields

    def get_team(self, obj: Finding) -> str | None:
        return obj.team.slug if obj.team_id and obj.team else None

    def get_assignee(self, obj: Finding) -> str | None:
        return obj.assignee.get_username() if obj.assignee_id and obj.assignee else None

    def get_risk_parts(self, obj: Finding) -> dict[str, float]:
        """The parts that add up to risk_score (severity/CVSS, EPSS, KEV, fix available, exposed)."""
        return {name: float(value) for name, value in (obj.risk_parts or {}).items()}

    def get_sla(self, obj: Finding) -> str:
        """overdue, due_soon, on_track, or none (no due date, or no longer needing work)."""
        return risk.sla_state(due=obj.due_date, today=timezone.localdate(), active=obj.is_active)

    def get_image(self, obj: Finding) -> str | None:
        return obj.image.name if obj.image_id and obj.image else None

    def get_package(self, obj: Finding) -> dict[str, Any] | None:
        if not obj.package_name:
            return None
        return {
            "name": obj.package_name,
            "version": obj.package_version,
            "fixed_version": obj.fixed_version,
            "type": obj.package_type,
            "path": obj.package_path,
        }

    def get_resource(self, obj: Finding) -> dict[str, Any] | None:
        if not obj.resource_name:
            return None
        return {"cluster": obj.resource_cluster, "namespace": obj.resource_namespace, "kind": obj.resource_kind, "name": obj.resource_name}


class FindingUpdateSerializer(serializers.Serializer[Any]):
    """PATCH /api/v1/findings/{id}/: any of status (with reason; expires with risk_accepted), assignee, comment."""

    status = serializers.ChoiceField(choices=Status.choices, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    expires = serializers.DateField(required=False, allow_null=True, default=None)
    assignee = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=150)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10000, default="")


class FindingBulkSerializer(serializers.Serializer[Any]):
    """POST /api/v1/findings/bulk/: one action and one reason for the listed ids or for every finding matching ``filter``."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100000)
    filter = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=200), required=False)
    action = serializers.ChoiceField(choices=[(a, a) for a in BULK_ACTIONS])
    status = serializers.ChoiceField(choices=Status.choices, required=False, default="")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    assignee = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=150, default=None)
    expires = serializers.DateField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("ids") and attrs.get("filter") is None:
            raise serializers.ValidationError('give "ids" or "filter"')
        return attrs


class BulkResultSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    changed = serializers.ListField(child=serializers.IntegerField())
    skipped = serializers.DictField(child=serializers.IntegerField())
    batch = serializers.UUIDField()
    pending_acceptances = serializers.ListField(child=serializers.IntegerField())
