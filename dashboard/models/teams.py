from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.choices import Role


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    #: Per-severity SLA overrides in days, e.g. {"critical": 3}; missing keys use the defaults.
    sla_days = models.JSONField(default=dict, blank=True)
    #: Risk acceptances need a second person's approval.
    four_eyes = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def sla_for(self, severity: str) -> int | None:
        days = {**settings.VIGIL_SLA_DAYS, **(self.sla_days or {})}
        value = days.get(severity)
        return int(value) if value is not None else None


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    #: A manager reads the teams granted to them; this grant also lets them triage and accept risk there.
    can_triage = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_user_team_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"
