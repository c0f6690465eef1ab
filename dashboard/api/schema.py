"""The OpenAPI schema (drf-spectacular) at /api/v1/schema/: bearer auth, the report endpoints
(plain APIViews, described here), query filters, and the one error shape on every operation.

Views are described from here, with extensions, so API modules stay thin.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated

from dashboard.models import Kind, ReportStatus, Severity, Status, Stream

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
#: Every operation may answer these, always in the one error shape.
ERROR_STATUSES = {
    "400": "The request is not valid (see error.details); a query parameter with a NUL or over VIGIL_MAX_PARAM_CHARS; a body cut short",
    "401": "No token, or an invalid, expired or revoked one; a credential in the query string; a missing, stale or wrong signature",
    "403": "The token's scope, team or address does not allow this",
    "404": "No such object, or one the caller may not read",
    "405": "Method not allowed",
    "409": "A replay of a signed request (refused, never answered again), or a conflicting state",
    "413": "The body is too large",
    "415": "Unsupported Content-Type or Content-Encoding",
    "422": "The report cannot be parsed or the request conflicts with an earlier one",
    "429": "Too many requests",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A Vigil API token (vgl_…); tokens with a signing secret also need X-Vigil-Signature.",
        }


_COUNTS = serializers.DictField(child=serializers.IntegerField())
REPORT_ACCEPTED = inline_serializer(
    name="ReportAccepted",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=ReportStatus.choices),
        "url": serializers.URLField(),
    },
)
REPORT_SUMMARY = inline_serializer(
    name="ReportSummary",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.ChoiceField(choices=ReportStatus.choices),
        "url": serializers.CharField(),
        "format": serializers.CharField(),
        "stream": serializers.CharField(),
        "team": serializers.CharField(allow_null=True),
        "image": serializers.CharField(allow_null=True),
        "counts": _COUNTS,
        "findings_total": serializers.IntegerField(),
        "held_closures": serializers.IntegerField(),
        "error": serializers.CharField(),
        "message": serializers.CharField(),
        "attempts": serializers.IntegerField(),
        "received_at": serializers.DateTimeField(allow_null=True),
        "observed_at": serializers.DateTimeField(allow_null=True),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)
_REPORT_PARAMETERS = [
    OpenApiParameter("format", str, description="the report format (detected from the content when absent)"),
    OpenApiParameter("image", str, description="the image the report is about, registry/repository:tag"),
    OpenApiParameter("team", str, description="the team the report is for: one the token covers"),
    OpenApiParameter("stream", str, enum=Stream.values),
    OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER),
    OpenApiParameter("wait", float, description="seconds (0-120) to wait for the report to be done: 200 with its gate decision, else 202"),
]
GATE_ANSWER = inline_serializer(
    name="GateAnswer",
    fields={
        "decision": serializers.ChoiceField(choices=["pass", "warn", "fail"]),
        "image": serializers.CharField(),
        "known": serializers.BooleanField(),
        "mode": serializers.CharField(),
        "policy": serializers.DictField(),
        "reasons": serializers.ListField(child=serializers.DictField()),
        "exempted": serializers.ListField(child=serializers.IntegerField()),
        "evaluated_at": serializers.DateTimeField(),
        "id": serializers.IntegerField(),
    },
)
_FINDING_FILTERS = [
    OpenApiParameter("team", str, description="team slug, or unowned (administrators)"),
    OpenApiParameter("image", str, description="registry/repository, repository, an image id, or image ids (3,7)"),
    OpenApiParameter("kind", str, enum=Kind.values),
    OpenApiParameter("severity", str, enum=Severity.values),
    OpenApiParameter("status", str, enum=[*Status.values, "active"]),
    OpenApiParameter("q", str, description="search in rule id, title and package"),
    OpenApiParameter("base_layer", str, description="OS-package findings from these layers: comma-separated DiffIDs (sha256:...)"),
    OpenApiParameter("sort", str, enum=["risk", "severity", "due", "first_seen", "last_seen"]),
    OpenApiParameter("report", str, description="a report id: the findings it created, reopened, left unchanged, fixed or holds"),
    OpenApiParameter("outcome", str, enum=["new", "reopened", "unchanged", "fixed", "held"], description="with report: one outcome"),
]


class ReportCreateSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.views.ReportCreateView"

    def view_replacement(self) -> Any:
        @extend_schema_view(
            post=extend_schema(
                summary="Store a report; it is processed in the background",
                parameters=_REPORT_PARAMETERS,
                request={
                    "application/json": {"type": "object", "additionalProperties": True},
                    "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
                },
                responses={202: REPORT_ACCEPTED, 200: REPORT_SUMMARY},
            )
        )
        class Described(self.target_class):  # type: ignore[name-defined, misc]
            pass

        return Described


class ReportDetailSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.views.ReportDetailView"

    def view_replacement(self) -> Any:
        @extend_schema_view(get=extend_schema(summary="A report's processing status and counts", responses={200: REPORT_SUMMARY}))
        class Described(self.target_class):  # type: ignore[name-defined, misc]
            pass

        return Described


class GateSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.gate.GateView"

    def view_replacement(self) -> Any:
        @extend_schema_view(
            get=extend_schema(
                summary="May this image ship? The decision of the owning team's policy, with reasons",
                parameters=[OpenApiParameter("image", str, required=True, description="registry/repository[:tag][@digest]")],
                responses={200: GATE_ANSWER},
            )
        )
        class Described(self.target_class):  # type: ignore[name-defined, misc]
            pass

        return Described


class PolicySchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.policies.PolicyView"

    def view_replacement(self) -> Any:
        body = {"application/json": {"type": "object", "additionalProperties": True}}

        @extend_schema_view(
            get=extend_schema(summary="A team's enforcement policy", responses={200: OpenApiTypes.OBJECT}),
            put=extend_schema(
                summary="Change some rules of a team's policy (a new version)", request=body, responses={200: OpenApiTypes.OBJECT}
            ),
        )
        class Described(self.target_class):  # type: ignore[name-defined, misc]
            pass

        return Described


class FindingListSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
    target_class = "dashboard.api.findings.FindingListView"

    def view_replacement(self) -> Any:
        @extend_schema_view(get=extend_schema(summary="Findings the caller may read", parameters=_FINDING_FILTERS))
        class Described(self.target_class):  # type: ignore[name-defined, misc]
            pass

        return Described


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: the one error shape, and every error status, on every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_STATUSES.items():
                responses.setdefault(code, {"description": description, "content": {"application/json": {"schema": reference}}})
    return result


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, JSON by default; for people and tokens of any scope."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [OpenApiJsonRenderer, OpenApiYamlRenderer]
