"""Error pages: API paths answer in the API's one error shape, everything else with Django's page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "not_found", "message": "not found"}}, status=404)
    return defaults.page_not_found(request, exception)  # type: ignore[arg-type]
