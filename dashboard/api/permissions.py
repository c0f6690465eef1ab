"""Who may call what: token scopes for machines, login for people."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from dashboard.models import TokenScope

#: Scopes that include others: admin can do everything a read or ingest token can.
_IMPLIES = {
    TokenScope.ADMIN: {TokenScope.ADMIN, TokenScope.READ, TokenScope.INGEST},
    TokenScope.READ: {TokenScope.READ},
    TokenScope.INGEST: {TokenScope.INGEST},
    # A cluster's webhook asks for decisions and nothing else: it reads no findings and posts no reports.
    TokenScope.ADMISSION: {TokenScope.ADMISSION},
}


def token_has_scope(token: Any, scope: str) -> bool:
    return scope in _IMPLIES.get(token.scope, set())


def refuse_unknown_method(request: Request, view: Any) -> None:
    """405 for a method the view does not have, whoever asks (permissions run before DRF's handler lookup)."""
    method = (request.method or "GET").lower()
    if method not in view.http_method_names or not hasattr(view, method):
        raise MethodNotAllowed(request.method or "")


class ScopePermission(BasePermission):
    """Tokens need the view's ``required_scopes[method]`` (a scope, or a tuple of scopes any of which will do);
    people need to be logged in.

    A method the view does not have is 405 for everyone, before any scope is looked at: permissions run
    before the handler lookup, so without this a DELETE would answer 403 as if some token could do it.
    """

    message = "this token's scope does not allow this request"

    def has_permission(self, request: Request, view: Any) -> bool:
        refuse_unknown_method(request, view)
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        token = getattr(user, "api_token", None)
        if token is None:
            return True
        required = getattr(view, "required_scopes", {}).get(request.method or "GET")
        if isinstance(required, tuple):
            return any(token_has_scope(token, scope) for scope in required)
        return required is not None and token_has_scope(token, required)
