"""Signed requests: what a signature covers, how it is checked, and how a replay is refused.

A token with a signing secret sends ``X-Vigil-Signature: t=<unix time>,v2=<hex HMAC-SHA256>``.  The HMAC,
keyed with the token's signing secret, is over the *canonical request*: six lines joined by ``\\n`` (no
newline at the end)::

    v2
    <t>
    <METHOD>                      upper case
    <path>                        percent-decoded once, then every byte but A-Z a-z 0-9 - _ . ~ / percent-encoded
    <canonical query>             the query's key=value pairs decoded, encoded the same way (``/`` too),
                                  sorted, joined with & (empty line when there is no query)
    <hex SHA-256 of the raw body> the bytes as sent (compressed as compressed, multipart as multipart)

So a signature binds the method, the path, every query parameter, the body and the time: changing any of
them in transit breaks it.  Each signature is kept for the replay window; the same signature again is
refused (409), never answered from a stored copy, so no request can receive another request's answer.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, SignedRequest
from dashboard.services.tokens import token_signing_secret

#: Signed requests whose timestamp is further than this from the server's clock are refused.
SIGNATURE_WINDOW_SECONDS = 300
SCHEME = "v2"
_HEADER_HELP = 'X-Vigil-Signature must be "t=<unix time>,v2=<hex HMAC-SHA256 of the canonical request>" (README: Signed requests)'


def _encode(raw: bytes, safe: str = "") -> str:
    """Percent-encode every byte except the RFC 3986 unreserved characters (and ``safe``), hex in upper case."""
    return quote_from_bytes(raw, safe=safe)


def canonical_query(query: bytes) -> str:
    """The query as signed: each ``key=value`` decoded (``+`` is a space, as the server reads it), re-encoded
    with only unreserved characters left as they are, sorted by key then value, joined with ``&``.

    A parameter without ``=`` is ``key=``; empty pieces (``a=1&&b=2``) are dropped, as the server drops them.
    """
    pairs = []
    for piece in query.split(b"&"):
        if not piece:
            continue
        key, _, value = piece.partition(b"=")
        pairs.append((_encode(unquote_to_bytes(key.replace(b"+", b" "))), _encode(unquote_to_bytes(value.replace(b"+", b" ")))))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_path(path: str) -> str:
    """The path as signed, from the path as the server has it (already percent-decoded once)."""
    return _encode(path.encode("utf-8", "surrogateescape"), safe="/")


def canonical_request(*, timestamp: int, method: str, path: str, query: bytes, body: bytes) -> bytes:
    """The bytes a v2 signature is the HMAC of (see the module docstring)."""
    lines = [
        SCHEME,
        str(timestamp),
        method.upper(),
        canonical_path(path),
        canonical_query(query),
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(lines).encode()


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    old_scheme = False
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == SCHEME and len(value) == 64:
            signatures.append(value.lower())
        elif key == "v1":
            old_scheme = True
    if old_scheme and not signatures:
        raise ApplicationError(
            "v1 signatures (timestamp and body only) are no longer accepted: sign the method, path, query and body "
            "digest as v2 (README: Signed requests)",
            code="bad_signature",
            status=401,
        )
    if timestamp is None or not signatures:
        raise ApplicationError(_HEADER_HELP, code="bad_signature", status=401)
    return timestamp, signatures


def signature_verify(
    *, token: ApiToken, header: str, method: str, path: str, query: bytes, body: bytes, now: float | None = None
) -> tuple[int, str]:
    """Check a v2 signature: timestamp within the window, HMAC of the canonical request compared in constant time.

    Returns ``(timestamp, signature)``; raises a 401 ApplicationError otherwise.
    """
    secret = token_signing_secret(token)
    if not secret:
        raise ApplicationError("this token has no signing secret", code="bad_signature", status=401)
    if not header:
        raise ApplicationError("this token requires signed requests: send X-Vigil-Signature", code="signature_required", status=401)
    timestamp, candidates = _parse_signature_header(header)
    current = timezone.now().timestamp() if now is None else now
    if abs(current - timestamp) > SIGNATURE_WINDOW_SECONDS:
        raise ApplicationError(
            f"signature timestamp is more than {SIGNATURE_WINDOW_SECONDS} s away from the server's clock",
            code="stale_signature",
            status=401,
        )
    signed = canonical_request(timestamp=timestamp, method=method, path=path, query=query, body=body)
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    matched = [candidate for candidate in candidates if hmac.compare_digest(expected, candidate)]
    if not matched:
        raise ApplicationError(
            "signature does not match the request (method, path, query, body and timestamp are all signed)",
            code="bad_signature",
            status=401,
        )
    return timestamp, matched[0]


def signature_claim(*, token: ApiToken, timestamp: int, signature: str, method: str, path: str) -> SignedRequest:
    """Record a verified signature; the same signature again is a replay, refused with 409.

    Two different requests never share a signature (it covers the whole request), so only a repeat of the very
    same request, within the same second, is refused: a sender repeating a request signs it again.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return SignedRequest.objects.create(
                token=token, signature=signature, timestamp=timestamp, method=method[:10], path=path[:500], received_at=now
            )
    except IntegrityError:
        first = SignedRequest.objects.filter(token=token, signature=signature).values_list("received_at", flat=True).first()
        when = f" at {first:%H:%M:%S} UTC" if first else ""
        raise ApplicationError(
            f"this signed request was already received{when} and is not processed again: sign each request anew "
            "(a repeat of the same request needs a new timestamp)",
            code="replayed",
            status=409,
        ) from None


def signatures_prune(*, now: Any = None) -> int:
    """Forget signatures older than twice the window: their timestamps are refused anyway."""
    cutoff = (now or timezone.now()) - timedelta(seconds=2 * SIGNATURE_WINDOW_SECONDS)
    deleted, _ = SignedRequest.objects.filter(received_at__lt=cutoff).delete()
    return deleted
