from django.urls import path

from dashboard.views import pages, reports

urlpatterns = [
    path("", pages.home, name="home"),
    path("overview/", pages.overview, name="overview"),
    path("teams/<slug:slug>/", pages.team_detail, name="team"),
    path("images/<int:pk>/", pages.image_detail, name="image"),
    path("findings/", pages.finding_list, name="findings"),
    path("findings/<int:pk>/", pages.finding_detail, name="finding"),
    path("reports/", reports.report_list, name="reports"),
    path("reports/<uuid:pk>/", reports.report_detail, name="report"),
    path("reports/<uuid:pk>/confirm-closures/", reports.report_confirm, name="report-confirm"),
]
