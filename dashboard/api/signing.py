"""Signed requests: the signature is verified on the raw bytes before anything parses them.

A token with a signing secret must send ``X-Vigil-Signature: t=<unix>,v2=<hex HMAC-SHA256 of the canonical
request>`` (method, path, query, body digest and timestamp: ``dashboard/ingest/signing.py``).
``verify_signed_request`` (called by the bearer authentication) reads the raw body once, with the report
size cap, checks timestamp and HMAC, and records the signature: the same signature again is refused (409).
"""

from __future__ import annotations

import io

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions, status

from dashboard.errors import ApplicationError
from dashboard.ingest.signing import signature_claim, signature_verify
from dashboard.models import ApiToken

SIGNATURE_HEADER = "HTTP_X_VIGIL_SIGNATURE"
_CHUNK = 1024 * 1024


class SignatureError(exceptions.AuthenticationFailed):
    """A missing, stale or wrong signature (401, in the one error shape)."""


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ReplayedRequest(exceptions.APIException):
    """The same signed request again: refused, never answered from a stored copy."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "replayed"


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
    """Verify the signature of a request made with a signing token; refuse a replay of an earlier one."""
    body = raw_body(request)
    try:
        timestamp, signature = signature_verify(
            token=token,
            header=request.META.get(SIGNATURE_HEADER, ""),
            method=request.method or "",
            path=request.path,
            query=request.META.get("QUERY_STRING", "").encode("latin-1", "replace"),
            body=body,
        )
    except ApplicationError as exc:
        raise SignatureError(exc.message, code=exc.code) from None
    try:
        signature_claim(token=token, timestamp=timestamp, signature=signature, method=request.method or "", path=request.path)
    except ApplicationError as exc:
        raise ReplayedRequest(exc.message, code=exc.code) from None
