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
