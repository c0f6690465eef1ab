"""One shape for every API error: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from dashboard.errors import ApplicationError


def error_response(code: str, message: str, http_status: int, details: Any = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(body, status=http_status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return error_response(exc.code, exc.message, exc.status, exc.extra or None, exc.headers or None)
    if isinstance(exc, Http404):
        return error_response("not_found", "not found", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        return error_response("invalid", "the request is not valid: see details", response.status_code, detail, dict(response.items()))
    message = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
    code = getattr(getattr(exc, "detail", None), "code", None) or getattr(exc, "default_code", "error")
    return error_response(str(code), message, response.status_code, None, dict(response.items()))
