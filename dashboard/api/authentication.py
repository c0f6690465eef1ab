"""Bearer tokens for machines.  A token authenticates as a TokenPrincipal bound to its team."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from dashboard.models import ApiToken
from dashboard.services.tokens import token_authenticate


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
        return TokenPrincipal(token), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def request_token(request: Any) -> ApiToken | None:
    user = getattr(request, "user", None)
    return getattr(user, "api_token", None)
