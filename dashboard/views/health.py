"""Probes: /healthz (the process is up: nothing else is checked) and /readyz (it can serve: database, broker, migrations)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from dashboard.selectors import health


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: answers as long as the process serves requests; no database, no broker (cheap, polled often)."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and the broker answer and the migrations are applied; else 503 naming what failed."""
    problems = health.readiness()
    failed = [name for name, problem in problems.items() if problem]
    body = {
        "status": "unavailable" if failed else "ready",
        "checks": {name: problem or "ok" for name, problem in problems.items()},
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)
