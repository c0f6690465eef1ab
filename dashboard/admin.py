from django.contrib import admin

from dashboard import models


@admin.register(models.Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "four_eyes")
    search_fields = ("slug", "name")


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role")
    list_filter = ("role", "team")


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "prefix", "scope", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope", "team")
    readonly_fields = ("prefix", "key_hash", "last_used_at")


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("registry", "repository", "team", "last_seen")
    search_fields = ("repository",)


# --- Training catalogue and nudges (issue 7) ---------------------------------------------------


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
