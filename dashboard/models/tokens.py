from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models.choices import TokenScope
from dashboard.models.teams import Team


class ApiToken(models.Model):
    """A machine credential bound to a team.  Only a keyed hash of the secret is stored."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    #: Public, unique part of the token used for O(1) lookup (shown in lists).
    prefix = models.CharField(max_length=16, unique=True)
    #: HMAC-SHA256 of the whole token, keyed by settings.TOKEN_HASH_KEY.
    key_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.INGEST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
