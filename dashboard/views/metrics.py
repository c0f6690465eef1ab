"""Prometheus metrics at /metrics, for a scraper holding VIGIL_METRICS_TOKEN (or, without one, inside the network
policy's reach: see README "Production")."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from dashboard import metrics
from dashboard.selectors import health


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = settings.VIGIL_METRICS_TOKEN
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JsonResponse({"error": {"code": "forbidden", "message": "send Authorization: Bearer VIGIL_METRICS_TOKEN"}}, status=403)
    elif settings.VIGIL_PRODUCTION:
        message = "set VIGIL_METRICS_TOKEN to scrape /metrics in production"
        return JsonResponse({"error": {"code": "forbidden", "message": message}}, status=403)
    body = metrics.exposition([metrics.QueueDepthCollector(health.queue_depths)])
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
