from django.urls import path

from dashboard.api import admission, base_images, findings, gate, notifications, nudges, policies, posture, schema, tickets, toxic, views

app_name = "api"

urlpatterns = [
    path("reports/", views.ReportCreateView.as_view(), name="report-create"),
    path("reports/<uuid:pk>/", views.ReportDetailView.as_view(), name="report-detail"),
    path("findings/", findings.FindingListView.as_view(), name="finding-list"),
    path("findings/bulk/", findings.FindingBulkView.as_view(), name="finding-bulk"),
    path("findings/export.csv", findings.FindingExportView.as_view(), name="finding-export"),
    path("findings/<int:pk>/", findings.FindingDetailView.as_view(), name="finding-detail"),
    path("nudges/", nudges.NudgeListView.as_view(), name="nudge-list"),
    path("base-images/", base_images.BaseImageListView.as_view(), name="base-image-list"),
    path("posture/", posture.PostureView.as_view(), name="posture"),
    path("posture/teams/", posture.PostureTeamsView.as_view(), name="posture-teams"),
    path("gate/", gate.GateView.as_view(), name="gate"),
    path("policies/<slug:team>/", policies.PolicyView.as_view(), name="policy"),
    path("teams/<slug:team>/notification-channels/", notifications.NotificationChannelListView.as_view(), name="notification-channels"),
    path(
        "teams/<slug:team>/notification-channels/<int:pk>/",
        notifications.NotificationChannelDetailView.as_view(),
        name="notification-channel",
    ),
    path("schema/", schema.SchemaView.as_view(), name="schema"),
    path("toxic/", toxic.ToxicListView.as_view(), name="toxic-list"),
    path("tickets/", tickets.TicketCreateView.as_view(), name="ticket-create"),
    path("trackers/<slug:team>/<str:kind>/webhook", tickets.TrackerWebhookView.as_view(), name="tracker-webhook"),
    path("admission/validate", admission.AdmissionValidateView.as_view(), name="admission-validate"),
]
