from __future__ import annotations

from django.db import models

from dashboard.models.teams import Team


class Image(models.Model):
    """A container image repository.  Tags and digests are occurrences (ImageVersion)."""

    registry = models.CharField(max_length=255)
    repository = models.CharField(max_length=255)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    labels = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["registry", "repository"]
        constraints = [models.UniqueConstraint(fields=["registry", "repository"], name="image_registry_repository_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository


class ImageVersion(models.Model):
    """One tag and/or digest of an image, with when it was first and last reported."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="versions")
    tag = models.CharField(max_length=128, blank=True, default="")
    digest = models.CharField(max_length=128, blank=True, default="")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["image", "tag", "digest"], name="imageversion_unique")]

    def __str__(self) -> str:
        ref = self.image.name
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


class BaseLayerCount(models.Model):
    """Active OS-package findings of one image, team, result target, layer and severity, counted by the hourly
    snapshot task (services/base_image_counts.py) so the base-image roll-up reads these rows, not the findings."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+", db_index=False)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    target = models.TextField()
    layer = models.CharField(max_length=255)
    severity = models.CharField(max_length=16)
    n = models.PositiveIntegerField()
    fixable = models.PositiveIntegerField()
    counted_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["team"], name="base_layer_count_team_idx")]
