from django.urls import path

from dashboard.sso.views import SsoCallbackView, SsoStartView

# mozilla-django-oidc reverses these two names.
urlpatterns = [
    path("authenticate/", SsoStartView.as_view(), name="oidc_authentication_init"),
    path("callback/", SsoCallbackView.as_view(), name="oidc_authentication_callback"),
]
