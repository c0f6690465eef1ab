from __future__ import annotations

from django.db import models

from dashboard.models.images import Image
from dashboard.models.teams import Team


class WorkloadSighting(models.Model):
    """An image version seen running in a workload: what "running" is made of.

    Written by the admission webhook (an allowed deploy), trivy-operator reports (the workload's scanned image) and
    Falco alerts (``container.image.*`` with ``k8s.*``).  One row per (cluster, namespace, workload, image, tag,
    digest); ``last_seen`` moves forward at most once per ``SIGHTING_STEP`` (services/sightings.py).  A sighting not
    seen for VIGIL_RUNNING_DAYS no longer counts as running.
    """

    class Source(models.TextChoices):
        ADMISSION = "admission"
        TRIVY_OPERATOR = "trivy-operator"
        FALCO = "falco"

    cluster = models.CharField(max_length=255, blank=True, default="")
    namespace = models.CharField(max_length=255, blank=True, default="")
    workload_kind = models.CharField(max_length=100, blank=True, default="")
    workload_name = models.CharField(max_length=255, blank=True, default="")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="sightings")
    tag = models.CharField(max_length=128, blank=True, default="")
    digest = models.CharField(max_length=128, blank=True, default="")
    #: The team whose view the sighting belongs to (the namespace's owner, else the image's).
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace", "workload_kind", "workload_name", "image", "tag", "digest"],
                name="workloadsighting_unique",
            )
        ]
        indexes = [models.Index(fields=["image", "-last_seen"], name="workloadsighting_image_idx")]

    def __str__(self) -> str:
        where = "/".join(part for part in (self.cluster, self.namespace, self.workload_kind, self.workload_name) if part)
        return f"{self.image.name}:{self.tag or self.digest} in {where}"
