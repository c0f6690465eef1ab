from django.urls import path

from dashboard.api import nudges, views

app_name = "api"

urlpatterns = [
    path("reports/", views.ReportCreateView.as_view(), name="report-create"),
    path("reports/<uuid:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
    path("findings/", views.FindingListView.as_view(), name="finding-list"),
    path("findings/<int:pk>/", views.FindingDetailView.as_view(), name="finding-detail"),
    path("nudges/", nudges.NudgeListView.as_view(), name="nudge-list"),
]
