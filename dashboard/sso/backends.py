"""Authentication backends: local passwords (which ``VIGIL_LOCAL_LOGIN=0`` turns off) and OpenID Connect.

The OpenID Connect backend is mozilla-django-oidc's authorization-code flow (state, nonce,
PKCE, signature against the provider's JWKS) with what it leaves to the site: the ID token's
issuer, audience and expiry are checked, the userinfo answer must be about the same subject,
and the person is found by ``(issuer, sub)`` and given the roles the group rules say.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard.errors import ApplicationError
from dashboard.services.audit import request_client_ip
from dashboard.services.sso import sso_enabled, sso_login

logger = logging.getLogger(__name__)


class LocalPasswordBackend(ModelBackend):
    """Django's username and password check, unless local accounts are turned off."""

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        if not settings.VIGIL_LOCAL_LOGIN:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class VigilOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if not sso_enabled() or request is None or "nonce" not in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except SuspiciousOperation as error:
            # A refused token is a failed login (back to the login page), not a server error.
            logger.warning("single sign-on refused: %s", error)
            return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The signature and nonce (the library), then what an ID token must also say (OpenID Connect Core 3.1.3.7).

        The library verifies a signed userinfo answer here too, without a nonce: its claims are the
        userinfo's, whose subject ``get_or_create_user`` compares with the ID token's."""
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        if "nonce" not in kwargs:
            return payload
        if payload.get("iss") != settings.VIGIL_OIDC_ISSUER:
            raise SuspiciousOperation(f"ID token issued by {payload.get('iss')!r}, not by the configured provider")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token is not meant for this client")
        if not isinstance(payload.get("exp"), int | float) or payload["exp"] < time.time():
            raise SuspiciousOperation("ID token has no expiry or has expired")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo is about another subject than the ID token")
        claims = {**payload, **userinfo}
        try:
            return sso_login(issuer=payload["iss"], claims=claims, ip=request_client_ip(self.request))
        except ApplicationError as error:
            raise SuspiciousOperation(error.message) from error
