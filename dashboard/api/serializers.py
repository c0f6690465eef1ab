from __future__ import annotations

from typing import Any

from rest_framework import serializers

from dashboard.models import Finding


class FindingSerializer(serializers.ModelSerializer[Finding]):
    team = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()
    package = serializers.SerializerMethodField()
    resource = serializers.SerializerMethodField()

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
            "risk_score",
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
