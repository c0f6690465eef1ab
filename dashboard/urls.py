from django.urls import path

from dashboard.views import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("overview/", pages.overview, name="overview"),
    path("teams/<slug:slug>/", pages.team_detail, name="team"),
    path("images/<int:pk>/", pages.image_detail, name="image"),
    path("findings/", pages.finding_list, name="findings"),
    path("findings/<int:pk>/", pages.finding_detail, name="finding"),
    path("reports/", pages.report_list, name="reports"),
    path("reports/<uuid:pk>/", pages.report_detail, name="report"),
]
