"""Read a report from a request: raw body or multipart ``file``, optionally gzip, with hard caps."""

from __future__ import annotations

import zlib

from django.conf import settings
from rest_framework.request import Request

from dashboard.errors import ApplicationError

ACCEPTED_TYPES = {
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/json-seq",
    "application/sarif+json",
    "application/vnd.cyclonedx+json",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/plain",
    "application/octet-stream",
    "application/gzip",
}
_CHUNK = 1024 * 1024


def _too_large(limit: int) -> ApplicationError:
    return ApplicationError(f"report is larger than the limit of {limit} bytes (VIGIL_MAX_REPORT_BYTES)", code="too_large", status=413)


def _read_capped(stream: object, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)  # type: ignore[attr-defined]
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def gunzip_capped(data: bytes, limit: int, ratio: int) -> bytes:
    """Decompress gzip without ever holding more than ``limit`` bytes; refuse gzip bombs."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    total = 0
    pending = data
    try:
        while pending:
            chunk = decompressor.decompress(pending, _CHUNK)
            total += len(chunk)
            pending = decompressor.unconsumed_tail
            consumed = len(data) - len(pending)
            if total > _CHUNK and total > ratio * max(consumed, 1):
                raise ApplicationError(
                    f"gzip body expands more than {ratio} times: refused as a possible gzip bomb", code="gzip_bomb", status=413
                )
            if total > limit:
                raise _too_large(limit)
            out.append(chunk)
            if decompressor.eof:
                break
        if not decompressor.eof:
            raise ApplicationError("gzip body is truncated", code="bad_gzip")
    except zlib.error as exc:
        raise ApplicationError(f"body is not valid gzip: {exc}", code="bad_gzip") from exc
    return b"".join(out)


def declared_length(request: Request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def read_report(request: Request) -> bytes:
    limit: int = settings.VIGIL_MAX_REPORT_BYTES
    django_request = request._request
    content_type = (django_request.META.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    encoding = (django_request.META.get("HTTP_CONTENT_ENCODING") or "").strip().lower()
    if declared_length(request) > limit:
        raise _too_large(limit)
    if content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("multipart upload has no 'file' field", code="missing_file")
        if upload.size and upload.size > limit:
            raise _too_large(limit)
        data = _read_capped(upload, limit)
        gzipped = data[:2] == b"\x1f\x8b"
    else:
        if content_type and content_type not in ACCEPTED_TYPES:
            raise ApplicationError(
                f"Content-Type {content_type!r} is not accepted: post JSON (application/json) or YAML, or multipart with a 'file' field",
                code="unsupported_media_type",
                status=415,
            )
        data = _read_capped(django_request, limit)
        gzipped = encoding == "gzip" or content_type == "application/gzip"
        if encoding and encoding not in ("gzip", "identity"):
            raise ApplicationError(f"Content-Encoding {encoding!r} is not supported: use gzip", code="unsupported_encoding", status=415)
    if gzipped:
        data = gunzip_capped(data, limit, settings.VIGIL_MAX_GZIP_RATIO)
    if not data.strip():
        raise ApplicationError("empty report: post the tool's output as the request body", code="empty")
    return data
