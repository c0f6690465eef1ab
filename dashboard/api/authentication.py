"""Bearer tokens for machines.  A token authenticates as a TokenPrincipal bound to its team(s).

Order of checks: format and checksum (no query), one lookup by public prefix with a
constant-time hash compare, active (not revoked, not expired), the token's IP allow-list,
then, for a token with a signing secret, the signature on the raw body (dashboard/api/signing.py).
Tokens are accepted only in the Authorization header, never in a URL, so they never reach access logs.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from dashboard.api.signing import verify_signed_request
from dashboard.errors import ApplicationError
from dashboard.models import ApiToken
from dashboard.services.audit import client_ip
from dashboard.services.tokens import token_authenticate, token_check_address, token_note_use


class AddressNotAllowed(exceptions.PermissionDenied):
    default_code = "address_not_allowed"


class TokenPrincipal:
    """The "user" of a request authenticated by an API token."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, token: ApiToken) -> None:
        self.api_token = token

    def __str__(self) -> str:
        return f"token {self.api_token.name} ({self.api_token.prefix})"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[TokenPrincipal, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'")
        token = token_authenticate(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        django_request = request._request
        ip = client_ip(django_request.META)
        try:
            token_check_address(token=token, ip=ip)
        except ApplicationError as exc:
            raise AddressNotAllowed(exc.message) from None
        if token.requires_signature:
            verify_signed_request(django_request, token)
        token_note_use(token=token, ip=ip)
        return TokenPrincipal(token), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def request_token(request: Any) -> ApiToken | None:
    user = getattr(request, "user", None)
    return getattr(user, "api_token", None)
