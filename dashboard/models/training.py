"""The training catalogue: free modules, and the topics that link them to finding classes."""

from __future__ import annotations

from django.db import models


class Topic(models.Model):
    """A thing teams get wrong, e.g. "Containers running as root".

    ``keys`` lists the finding class keys it covers (see ``dashboard/selectors/finding_classes.py``):
    ``vigil:root-container``, ``cwe:CWE-79``, ``check:KSV012``, ``policy:disallow-latest-tag``,
    ``falco:terminal shell in container``.
    """

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    #: One friendly sentence on why it matters, shown in nudges.
    summary = models.TextField(blank=True, default="")
    keys = models.JSONField(default=list, blank=True)
    #: Runtime classes nudge at once on ingest; others wait for the scheduled run.
    urgent = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TrainingModule(models.Model):
    """One free public resource: a cheat sheet, a documentation page, a guide, a course."""

    class Format(models.TextChoices):
        CHEAT_SHEET = "cheat sheet"
        DOCUMENTATION = "documentation"
        TUTORIAL = "tutorial"
        GUIDE = "guide"
        BENCHMARK = "benchmark"
        CHECKLIST = "checklist"
        COURSE = "course"
        REFERENCE = "reference"
        VIDEO = "video"

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=300)
    url = models.URLField(max_length=500)
    provider = models.CharField(max_length=100)
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.DOCUMENTATION)
    minutes = models.PositiveIntegerField(default=15)
    description = models.TextField(blank=True, default="")
    topics = models.ManyToManyField(Topic, related_name="modules", blank=True)
    #: Lower comes first when several modules cover a topic.
    rank = models.PositiveSmallIntegerField(default=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["rank", "minutes", "title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.provider})"
