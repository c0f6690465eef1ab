from django.urls import path

from dashboard.views import audit, home, nudges, ownership, pages, reports, toxic, triage

urlpatterns = [
    path("", home.home, name="home"),
    path("overview/", pages.overview, name="overview"),
    path("teams/<slug:slug>/", pages.team_detail, name="team"),
    path("images/<int:pk>/", pages.image_detail, name="image"),
    # Triage (issue 6)
    path("findings/", triage.finding_list, name="findings"),
    path("findings/export.csv", triage.finding_export, name="findings-export"),
    path("findings/bulk/", triage.finding_bulk, name="findings-bulk"),
    path("findings/bulk/<uuid:batch>/undo/", triage.bulk_undo, name="findings-bulk-undo"),
    path("findings/<int:pk>/", triage.finding_detail, name="finding"),
    path("findings/<int:pk>/update/", triage.finding_update, name="finding-update"),
    path("findings/<int:pk>/accept-scope/", triage.finding_accept_scope, name="finding-accept-scope"),
    path("findings/<int:pk>/events/<int:event_pk>/undo/", triage.event_undo, name="finding-event-undo"),
    path("acceptances/", triage.acceptance_list, name="acceptances"),
    path("acceptances/<int:pk>/approve/", triage.acceptance_decide, {"decision": "approve"}, name="acceptance-approve"),
    path("acceptances/<int:pk>/reject/", triage.acceptance_decide, {"decision": "reject"}, name="acceptance-reject"),
    path("triage-rules/", triage.rule_list, name="triage-rules"),
    path("triage-rules/<int:pk>/enable/", triage.rule_action, {"action": "enable"}, name="triage-rule-enable"),
    path("triage-rules/<int:pk>/disable/", triage.rule_action, {"action": "disable"}, name="triage-rule-disable"),
    path("triage-rules/<int:pk>/apply/", triage.rule_action, {"action": "apply"}, name="triage-rule-apply"),
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
    path("toxic/", toxic.toxic_list, name="toxic"),
]
