"""API tokens: shown once, stored as a keyed hash, found in O(1) by a public prefix.

Format: ``vgl_`` + 10-character public prefix + 32-character secret + 6-character
CRC32 checksum (base62), so secret scanners can recognise leaked tokens and a
typo is caught before any database lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, Team, TokenScope

TOKEN_PREFIX = "vgl_"  # noqa: S105 - the public token prefix, not a secret
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PUBLIC_LEN = 10
_SECRET_LEN = 32
_CHECK_LEN = 6
TOKEN_LENGTH = len(TOKEN_PREFIX) + _PUBLIC_LEN + _SECRET_LEN + _CHECK_LEN


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    out = ""
    for _ in range(_CHECK_LEN):
        value, rem = divmod(value, 62)
        out = _ALPHABET[rem] + out
    return out


def _hash(token: str) -> str:
    return hmac.new(settings.TOKEN_HASH_KEY.encode(), token.encode(), hashlib.sha256).hexdigest()


def token_create(
    *, team: Team, name: str, scope: str = TokenScope.INGEST, created_by: User | None = None, days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns the record and the plaintext, which is never stored."""
    if scope not in TokenScope.values:
        raise ApplicationError(f"unknown scope {scope!r}; use one of {', '.join(TokenScope.values)}")
    if not name.strip():
        raise ApplicationError("a token needs a name")
    public = _random(_PUBLIC_LEN)
    body = TOKEN_PREFIX + public + _random(_SECRET_LEN)
    plaintext = body + _checksum(body)
    lifetime = settings.VIGIL_TOKEN_DAYS if days is None else days
    token = ApiToken.objects.create(
        team=team,
        name=name.strip(),
        prefix=public,
        key_hash=_hash(plaintext),
        scope=scope,
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=lifetime) if lifetime else None,
    )
    return token, plaintext


def token_authenticate(plaintext: str) -> ApiToken | None:
    """The active token for this plaintext, or None.  One indexed lookup, constant-time compare."""
    if len(plaintext) != TOKEN_LENGTH or not plaintext.startswith(TOKEN_PREFIX):
        return None
    body, check = plaintext[:-_CHECK_LEN], plaintext[-_CHECK_LEN:]
    if not hmac.compare_digest(_checksum(body), check):
        return None
    public = plaintext[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _PUBLIC_LEN]
    token = ApiToken.objects.select_related("team").filter(prefix=public).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash(plaintext)) or not token.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
