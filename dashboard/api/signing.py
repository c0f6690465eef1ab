"""Signed requests: the body is verified on its raw bytes before anything parses it.

A token with a signing secret must send ``X-Vigil-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">``.  ``verify_signed_request`` (called by the bearer authentication) reads the
raw body once, with the report size cap, checks timestamp and HMAC, and records the signature
in the database.  A repeat of the same signed request inside the window is not processed
again: ``SignedReplayMiddleware`` answers it with the first answer.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken
from dashboard.services.tokens import signature_claim, signature_store_answer, signature_verify

SIGNATURE_HEADER = "HTTP_X_VIGIL_SIGNATURE"
_CHUNK = 1024 * 1024


class SignatureError(exceptions.AuthenticationFailed):
    """A missing, stale or wrong signature (401, in the one error shape)."""


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ReplayedRequest(exceptions.APIException):
    """A repeat of a signed request: the middleware swaps in the first answer."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "replayed"
    default_detail = "this signed request was already received; its first answer is replayed"


def raw_body(request: HttpRequest) -> bytes:
    """The request body as sent, read once under VIGIL_MAX_REPORT_BYTES and kept for the view to read again."""
    cached = getattr(request, "_body", None)
    if cached is not None:
        return bytes(cached)
    limit: int = settings.VIGIL_MAX_REPORT_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    message = f"report is larger than the limit of {limit} bytes (VIGIL_MAX_REPORT_BYTES)"
    if declared > limit:
        raise BodyTooLarge(message)
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = request.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(message)
        parts.append(chunk)
    data = b"".join(parts)
    # As HttpRequest.body does: keep the bytes and let later readers (DRF parsers, uploads) read them again.
    request._body = data
    request._stream = io.BytesIO(data)
    return data


def verify_signed_request(request: HttpRequest, token: ApiToken) -> None:
    """Verify the signature of a request made with a signing token; note it for replay detection."""
    body = raw_body(request)
    try:
        timestamp, signature = signature_verify(token=token, header=request.META.get(SIGNATURE_HEADER, ""), body=body)
    except ApplicationError as exc:
        raise SignatureError(exc.message, code=exc.code) from None
    claim = signature_claim(token=token, timestamp=timestamp, signature=signature, method=request.method or "", path=request.path)
    request.vigil_signature = claim  # type: ignore[attr-defined]
    if claim.replay:
        raise ReplayedRequest()


def _replay(record: Any) -> HttpResponse:
    if record.status_code is None:
        response: HttpResponse = JsonResponse(
            {"error": {"code": "in_progress", "message": "the first request with this signature is still being handled: retry shortly"}},
            status=409,
        )
        response["Retry-After"] = "1"
        return response
    if record.response_body is None:
        return JsonResponse(
            {
                "error": {
                    "code": "replayed",
                    "message": f"this signed request was already answered ({record.status_code}); its answer was too large to keep",
                }
            },
            status=409,
        )
    response = HttpResponse(bytes(record.response_body), status=record.status_code, content_type=record.content_type or None)
    response["X-Vigil-Replayed"] = "1"
    return response


class SignedReplayMiddleware:
    """Keeps the first answer to each signed request, and gives it to any replay of that request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        claim = getattr(request, "vigil_signature", None)
        if claim is None:
            return response
        if claim.replay:
            claim.record.refresh_from_db()
            return _replay(claim.record)
        if not getattr(response, "streaming", False):
            signature_store_answer(
                record=claim.record, status_code=response.status_code, body=response.content, content_type=response.get("Content-Type", "")
            )
        return response
