"""The validating admission webhook: ``POST /api/v1/admission/validate`` (an admission token only)."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import metrics
from dashboard.api.permissions import refuse_unknown_method, token_has_scope
from dashboard.api.uploads import declared_length
from dashboard.errors import ApplicationError
from dashboard.models import TokenScope
from dashboard.services.admission import admission_validate

#: The API server sends at most about 3 MiB (etcd's object limit), wrapped in the review.
MAX_REVIEW_BYTES = 4 * 1024 * 1024


class _RawBody(BaseParser):
    """The body is read by the view (DRF's JSON parser would answer a bad body in its own words)."""

    media_type = "*/*"


class AdmissionTokenOnly(BasePermission):
    """Only a cluster's webhook asks: an ``admission`` token (people and other tokens get 403)."""

    message = "only an admission token may ask for admission decisions"

    def has_permission(self, request: Request, view: Any) -> bool:
        refuse_unknown_method(request, view)
        token = getattr(request.user, "api_token", None)
        return token is not None and token_has_scope(token, TokenScope.ADMISSION)


class AdmissionValidateView(APIView):
    permission_classes = [AdmissionTokenOnly]
    parser_classes = [_RawBody]

    @extend_schema(
        summary="Validating admission webhook: decide on every image of an admission.k8s.io/v1 AdmissionReview",
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("cluster", str, description="the cluster, for a token not bound to one")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        if declared_length(request) > MAX_REVIEW_BYTES:
            raise ApplicationError(f"an AdmissionReview is at most {MAX_REVIEW_BYTES} bytes", code="too_large", status=413)
        body = request._request.read(MAX_REVIEW_BYTES + 1)
        if len(body) > MAX_REVIEW_BYTES:
            raise ApplicationError(f"an AdmissionReview is at most {MAX_REVIEW_BYTES} bytes", code="too_large", status=413)
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApplicationError(f"the body is not JSON: {exc}", code="invalid_admission_review") from exc
        with metrics.decision(metrics.ADMISSION_DECISIONS, metrics.ADMISSION_LATENCY) as counted:
            outcome = admission_validate(document=document, by=request.user, cluster=request.query_params.get("cluster", ""))
            counted.value = metrics.admission_outcome(outcome.review, decided=outcome.request.decided)
        return Response(outcome.review)
