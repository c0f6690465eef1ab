from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.sso.views import VigilLoginView
from dashboard.views import health
from dashboard.views.metrics import metrics_view

urlpatterns = [
    path("login/", VigilLoginView.as_view(), name="login"),
    path("oidc/", include("dashboard.sso.urls")),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("dashboard.api.urls")),
    path("", include("dashboard.urls")),
]

#: API paths answer 404 in the API's error shape (the schema promises JSON everywhere under /api/).
handler404 = "dashboard.views.errors.not_found"
