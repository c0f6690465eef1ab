"""Ownership rules: which team owns a finding, decided by image, label or namespace.

Precedence is explicit (see ``dashboard.services.ownership`` and the README): the most
specific matching rule wins, then the higher ``priority``, then the older rule.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.teams import Team


class OwnerSource(models.TextChoices):
    """How a finding's team was decided (Finding.owner_source), in order of precedence."""

    MANUAL = "manual", "set by an administrator"
    NAMED = "named", "named by the report (team=)"
    RULE = "rule", "an ownership rule"
    REPORT = "report", "the report's team (its token's team)"
    NONE = "none", "unowned"


class OwnershipRule(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "image repository"
        LABEL = "label", "label"
        NAMESPACE = "namespace", "Kubernetes namespace"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="ownership_rules")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    #: image: ``registry/repository`` glob; namespace: name or glob; label: ``key=value`` (value may be a glob).
    pattern = models.CharField(max_length=500)
    #: Breaks ties between equally specific rules: higher wins.
    priority = models.IntegerField(default=0)
    note = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "pattern", "id"]
        constraints = [models.UniqueConstraint(fields=["kind", "pattern"], name="ownershiprule_kind_pattern_unique")]

    def __str__(self) -> str:
        return f"rule #{self.pk} {self.kind} {self.pattern} → {self.team_id}"
