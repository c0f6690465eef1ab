from typing import Any

from django.contrib import admin

from dashboard import models
from dashboard.services.audit import client_ip
from dashboard.services.teams import membership_remove, membership_set
from dashboard.services.tokens import token_revoke


@admin.register(models.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "four_eyes")
    search_fields = ("slug", "name")


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Changes go through the services, so every one is in the audit log."""

    list_display = ("user", "team", "role", "can_triage")
    list_filter = ("role", "team")

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        ip = client_ip(request.META)
        if change and ("user" in form.changed_data or "team" in form.changed_data):
            old = models.Membership.objects.select_related("user", "team").get(pk=obj.pk)
            membership_remove(user=old.user, team=old.team, by=request.user, ip=ip)
        saved = membership_set(user=obj.user, team=obj.team, role=obj.role, can_triage=obj.can_triage, by=request.user, ip=ip)
        obj.pk = saved.pk

    def delete_model(self, request: Any, obj: Any) -> None:
        membership_remove(user=obj.user, team=obj.team, by=request.user, ip=client_ip(request.META))

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        for membership in queryset.select_related("user", "team"):
            self.delete_model(request, membership)


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_token` (the secret is shown once); here they are listed and revoked."""

    list_display = ("name", "team", "prefix", "scope", "all_teams", "expires_at", "last_used_at", "last_used_ip", "revoked_at")
    list_filter = ("scope", "all_teams", "team")
    readonly_fields = (
        "team",
        "extra_teams",
        "all_teams",
        "name",
        "prefix",
        "scope",
        "allowed_cidrs",
        "rotated_from",
        "created_by",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    )
    exclude = ("key_hash", "signing_salt")
    actions = ["revoke"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: Any, queryset: Any) -> None:
        for token in queryset.select_related("team"):
            token_revoke(token=token, by=request.user, ip=client_ip(request.META), reason="revoked in the admin")


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("registry", "repository", "team", "last_seen")
    search_fields = ("repository",)


# --- Training catalogue and nudges ---------------------------------------------------


@admin.register(models.Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "urgent", "active")
    list_filter = ("urgent", "active")
    search_fields = ("name", "slug", "summary")


@admin.register(models.TrainingModule)
class TrainingModuleAdmin(admin.ModelAdmin):
    list_display = ("title", "provider", "format", "minutes", "rank", "active")
    list_filter = ("provider", "format", "active", "topics")
    search_fields = ("title", "url", "provider", "description", "slug")
    filter_horizontal = ("topics",)


@admin.register(models.Nudge)
class NudgeAdmin(admin.ModelAdmin):
    list_display = ("team", "topic", "rule", "state", "findings_count", "created_at", "completed_at")
    list_filter = ("state", "rule", "team", "topic")
    readonly_fields = ("findings", "created_at", "period", "rule", "findings_count", "acted_by")


@admin.register(models.TeamWebhook)
class TeamWebhookAdmin(admin.ModelAdmin):
    list_display = ("team", "url", "active", "created_at")
    list_filter = ("active",)


# --- Triage: decisions are made in the UI (they are events); the admin shows them and the intel data.


@admin.register(models.RiskAcceptance)
class RiskAcceptanceAdmin(admin.ModelAdmin):
    list_display = ("id", "team", "state", "expires", "requested_by", "approved_by", "created_at")
    list_filter = ("state", "team")
    readonly_fields = ("findings", "requested_by", "approved_by", "decided_at", "created_at", "rule")


@admin.register(models.TriageRule)
class TriageRuleAdmin(admin.ModelAdmin):
    list_display = ("id", "team", "name", "action", "enabled", "created_at")
    list_filter = ("action", "enabled", "team")


@admin.register(models.KevEntry)
class KevEntryAdmin(admin.ModelAdmin):
    list_display = ("cve", "vendor_project", "product", "date_added", "due_date")
    search_fields = ("cve", "vendor_project", "product")


@admin.register(models.EpssScore)
class EpssScoreAdmin(admin.ModelAdmin):
    list_display = ("cve", "epss", "percentile", "date")
    search_fields = ("cve",)
