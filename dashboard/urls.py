from django.urls import path

from dashboard.views import audit, nudges, ownership, pages, reports

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
    path("nudges/", nudges.nudge_list, name="nudges"),
    path("nudges/impact/", nudges.nudge_impact, name="nudge-impact"),
    path("nudges/<int:pk>/", nudges.nudge_detail, name="nudge"),
    path("nudges/<int:pk>/<slug:action>/", nudges.nudge_action, name="nudge-action"),
    # Ownership and access (issue 5)
    path("ownership/", ownership.rule_list, name="ownership"),
    path("ownership/rules/new/", ownership.rule_new, name="ownership-rule-new"),
    path("ownership/rules/<int:pk>/", ownership.rule_edit, name="ownership-rule"),
    path("ownership/rules/<int:pk>/delete/", ownership.rule_remove, name="ownership-rule-delete"),
    path("ownership/unowned/", ownership.unowned, name="ownership-unowned"),
    path("ownership/findings/<int:pk>/", ownership.finding_owner, name="ownership-finding"),
    path("ownership/findings/<int:pk>/owner/", ownership.finding_owner_set, name="ownership-finding-set"),
    path("ownership/images/<int:pk>/", ownership.image_owner, name="ownership-image"),
    path("audit/", audit.audit_log, name="audit"),
]
