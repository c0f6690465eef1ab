"""GET /api/v1/base-images/: the base-image roll-up of the teams the caller may read (scope read)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api.permissions import ScopePermission
from dashboard.models import TokenScope
from dashboard.selectors.base_images import BaseGroup, base_image_groups, counted_at, release_of


class TeamShareSerializer(serializers.Serializer[Any]):
    team = serializers.CharField(help_text="team slug, or 'unowned'")
    images = serializers.ListField(child=serializers.CharField())
    findings = serializers.IntegerField()
    fixable = serializers.IntegerField()
    queue = serializers.CharField(help_text="the queue filtered to exactly these findings")


class BaseGroupSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    name = serializers.CharField()
    os = serializers.DictField(child=serializers.CharField())
    base_layers = serializers.ListField(child=serializers.CharField())
    move_to = serializers.CharField()
    summary = serializers.CharField()
    findings = serializers.IntegerField()
    fixable = serializers.IntegerField()
    fixable_images = serializers.IntegerField()
    fixable_teams = serializers.IntegerField()
    by_severity = serializers.DictField(child=serializers.IntegerField())
    images = serializers.ListField(child=serializers.CharField())
    teams = TeamShareSerializer(many=True)


class BaseImagesSerializer(serializers.Serializer[Any]):
    counted_at = serializers.DateTimeField(allow_null=True, help_text="when the hourly snapshot task counted these (null: not yet)")
    results = BaseGroupSerializer(many=True)


def group_data(group: BaseGroup, *, queue_url: str) -> dict[str, Any]:
    return {
        "key": group.key,
        "name": group.name,
        "os": {"family": group.os_family, "version": group.os_version, "release": release_of(group.os_family, group.os_version)},
        "base_layers": list(group.layers),
        "move_to": group.target,
        "summary": group.summary,
        "findings": group.findings,
        "fixable": group.fixable,
        "fixable_images": group.fixable_images,
        "fixable_teams": group.fixable_teams,
        "by_severity": group.by_severity,
        "images": [image.name for image in group.images],
        "teams": [
            {
                "team": share.slug,
                "images": [image.name for image in share.images],
                "findings": share.findings,
                "fixable": share.fixable,
                "queue": f"{queue_url}?{share.query}",
            }
            for share in group.shares
        ],
    }


class BaseImageListView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"GET": TokenScope.READ}

    @extend_schema(responses={200: BaseImagesSerializer}, summary="OS-package findings grouped by the base image they come from")
    def get(self, request: Request) -> Response:
        queue_url = request.build_absolute_uri(reverse("findings"))
        groups = base_image_groups(user=request.user)
        at = counted_at()
        results = [group_data(group, queue_url=queue_url) for group in groups]
        return Response({"counted_at": at.isoformat() if at else None, "results": results})
