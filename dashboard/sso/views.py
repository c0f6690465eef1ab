"""The login page (local form and/or "Sign in with <provider>"), and mozilla-django-oidc's login start and
callback, which answer 404 while single sign-on is not configured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from dashboard.services.sso import sso_enabled


class VigilLoginView(LoginView):
    """Django's login, with the single sign-on button when configured; a POST is refused when local accounts are off."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.VIGIL_LOCAL_LOGIN:
            return HttpResponse("Local accounts are turned off: sign in with single sign-on.", status=403, content_type="text/plain")
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["local_login"] = settings.VIGIL_LOCAL_LOGIN
        context["sso_provider"] = (settings.VIGIL_OIDC_PROVIDER_NAME or "single sign-on") if sso_enabled() else ""
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context


class SsoStartView(OIDCAuthenticationRequestView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        return super().dispatch(request, *args, **kwargs)


class SsoCallbackView(OIDCAuthenticationCallbackView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        return super().dispatch(request, *args, **kwargs)
