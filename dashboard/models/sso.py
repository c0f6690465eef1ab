"""Which identity-provider account a Vigil user is: the issuer and its stable subject (``sub``).

Matching by ``(issuer, subject)`` rather than by username or e-mail means an account at the
identity provider cannot take over a local account that happens to share its name.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SsoIdentity(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    #: The groups the provider sent at the last login, for the admin and for support questions.
    groups = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject_unique")]

    def __str__(self) -> str:
        return f"{self.user} = {self.subject} at {self.issuer}"
