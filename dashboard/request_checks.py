"""Checks every request passes before any view, API or form sees it (the first middleware).

- A query parameter, form field or path with a NUL character, or a query parameter longer than
  ``VIGIL_MAX_PARAM_CHARS``, answers 400: PostgreSQL cannot store or compare a NUL in text, and no filter needs kilobytes.
- A credential in the query string (``?token=``, ``?api_key=``, ... or any value that is a Vigil token or
  signing secret) answers 401: URLs end up in access logs, proxies and browser histories; credentials go
  in the ``Authorization`` header.
- A body shorter than its ``Content-Length`` (the client closed early) fails the first read that reaches
  its end with 400, so a truncated upload is never taken for a whole one.

API paths answer in the API's one error shape; pages with a short page saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from dashboard.errors import ApplicationError
from dashboard.log_redaction import contains_secret

#: Query parameter names that carry credentials (compared case-insensitively, ``-`` read as ``_``).
CREDENTIAL_PARAMETERS = frozenset(
    {
        "token",
        "access_token",
        "auth_token",
        "api_token",
        "id_token",
        "refresh_token",
        "bearer",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
        "signing_secret",
        "password",
        "auth",
        "authorization",
        "x_vigil_signature",
    }
)


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class IncompleteBody(ApplicationError, BadRequest):
    """The body ended before its Content-Length: 400 in the API's shape, and Django's 400 for pages."""


class _CompleteBody:
    """Wraps the request's body stream: reaching its end short of the declared length raises IncompleteBody."""

    def __init__(self, stream: Any, declared: int) -> None:
        self._stream = stream
        self._declared = declared
        self._seen = 0

    def _check(self, ended: bool) -> None:
        if ended and self._seen < self._declared:
            raise IncompleteBody(
                f"the body ended after {self._seen} of the {self._declared} bytes its Content-Length declared "
                "(the client closed the connection early?): nothing of it was imported",
                code="incomplete_body",
            )

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        data: bytes = self._stream.read() if whole else self._stream.read(size)
        self._seen += len(data)
        # Servers' body readers return fewer bytes than asked only at the end of the body.
        self._check(whole or len(data) < size)  # type: ignore[operator]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line: bytes = self._stream.readline() if size is None or size < 0 else self._stream.readline(size)
        self._seen += len(line)
        self._check(not line)
        return line

    def close(self) -> None:
        self._stream.close()


def _refuse(request: HttpRequest, *, status: int, code: str, message: str, title: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    else:
        response = render(request, "request_refused.html", {"title": title, "message": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _parameter_problem(request: HttpRequest) -> str:
    limit: int = settings.VIGIL_MAX_PARAM_CHARS
    if "\x00" in request.path:
        return "the path contains a NUL character"
    for key, values in request.GET.lists():
        name = repr(key[:40])
        if "\x00" in key or any("\x00" in value for value in values):
            return f"query parameter {name} contains a NUL character"
        if len(key) > limit or any(len(value) > limit for value in values):
            return f"query parameter {name} is longer than {limit} characters"
    if request.method == "POST" and request.content_type in _FORM_TYPES and not request.path.startswith("/api/"):
        # Some page actions read a field or two (a reason, a pattern) without a Django form, which would refuse a NUL.
        # (Not the API: a signed upload is verified on its raw bytes, which parsing them here would consume.)
        for key, values in request.POST.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return f"form field {key[:40]!r} contains a NUL character"
    return ""


def _credential_in_query(request: HttpRequest) -> str:
    for key, values in request.GET.lists():
        if key.strip().lower().replace("-", "_") in CREDENTIAL_PARAMETERS or any(contains_secret(value) for value in values):
            return key
    return ""


class RequestChecksMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > 0:
            request._stream = _CompleteBody(request._stream, declared)  # type: ignore[attr-defined,assignment]
        problem = _parameter_problem(request)
        if problem:
            return _refuse(request, status=400, code="bad_parameter", message=problem, title="Bad request")
        credential = _credential_in_query(request)
        if credential:
            message = (
                f"credentials are not accepted in the query string (parameter {credential[:40]!r}): "
                "send the token in the Authorization header (Authorization: Bearer <token>)"
            )
            return _refuse(request, status=401, code="credentials_in_query", message=message, title="Credentials in the URL")
        return self.get_response(request)
