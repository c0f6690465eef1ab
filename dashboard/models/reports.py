from __future__ import annotations

import uuid
import zlib

import lz4.block
from django.conf import settings
from django.db import models

from dashboard.models.choices import ReportStatus
from dashboard.models.teams import Team
from dashboard.models.tokens import ApiToken

#: The formats whose reports are single events (scanners.registry.EVENT_FORMATS, pinned by a test), as a literal
#: because a partial index's condition is part of the schema.
EVENT_REPORT_FORMATS = ["admission-review", "falco"]


def empty_counts() -> dict[str, int]:
    return {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}


class Report(models.Model):
    """One uploaded report and its processing state.  The raw bytes live in ReportPayload."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    #: The sender named the team (``team=``): it then wins over ownership rules.
    team_named = models.BooleanField(default=False)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    #: The format the sender declared ("" = detect from content) and the one actually used.
    declared_format = models.CharField(max_length=32, blank=True, default="")
    format = models.CharField(max_length=32, blank=True, default="")
    stream = models.CharField(max_length=16, blank=True, default="")
    #: Image reference given by the sender (?image=), overriding the report's own.
    image_ref = models.CharField(max_length=512, blank=True, default="")
    #: The cluster the report came from (the token's binding or ``cluster=``), given to resources that name none.
    cluster = models.CharField(max_length=255, blank=True, default="")
    image = models.ForeignKey("dashboard.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    #: The tag and digest of ``image`` the report was about (the image_ref, else the report's own artifact).
    image_tag = models.CharField(max_length=128, blank=True, default="")
    image_digest = models.CharField(max_length=128, blank=True, default="")
    content_sha256 = models.CharField(max_length=64, db_index=True)
    #: scanners.digest.stable_digest of the payload (run timestamps and ids blanked): a repeated scan has the same.
    stable_sha256 = models.CharField(max_length=64, blank=True, default="")
    #: The lifecycle scopes an applied scan report spoke for (repeat.py compares a repeated report's with them).
    scopes = models.JSONField(default=list, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.QUEUED, db_index=True)
    counts = models.JSONField(default=empty_counts)
    findings_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    #: Closures held for confirmation because they would close more than half of a scope.
    held_closures = models.JSONField(default=list, blank=True)
    #: The findings the report named that it neither created nor reopened (its "unchanged" outcome): the
    #: other outcomes are FindingEvent rows carrying the report, but an unchanged finding gets no event.
    unchanged_ids = models.JSONField(default=list, blank=True)
    #: How many identical events the report stands for (event reports only; set by Vigil alone, never over the API):
    #: a minute's repeats of one admission event are one report counting them (services/admission_repeats.py).
    #: An IntegerField with a check of its own (at least 1): a PositiveIntegerField would add a second one (>= 0), and
    #: each costs the migration a scan of the reports table.
    occurrences = models.IntegerField(default=1)
    #: When the report's content was observed (received_at unless backdated, e.g. demo data).
    observed_at = models.DateTimeField()
    received_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: When retention deleted the raw payload (VIGIL_RAW_RETENTION_DAYS); the metadata above stays.
    payload_pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["team", "-received_at"]),
            models.Index(fields=["status", "received_at"]),
            models.Index(fields=["stable_sha256"], condition=~models.Q(stable_sha256=""), name="report_stable_sha256_idx"),
            # Reports waiting for a person to confirm held closures (the home page and the reports list ask).
            models.Index(fields=["team", "-received_at"], condition=~models.Q(held_closures=[]), name="report_held_closures_idx"),
            # Retention walks event reports (one alert or denial each) oldest first; scan reports, kept, stay out of
            # it.  services/retention.py filters on the same list: the planner uses a partial index for its own condition.
            models.Index(
                fields=["received_at", "id"], condition=models.Q(format__in=EVENT_REPORT_FORMATS), name="report_event_received_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["token", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="report_token_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(occurrences__gte=1), name="report_occurrences_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.format or self.declared_format or 'report'} {self.id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ReportPayload(models.Model):
    """The raw report exactly as posted (after the API undid any gzip), kept apart so lists never load it.

    Stored compressed (``encoding``): with lz4 a 10 MB Trivy report is 1.1 MB, 6 ms to compress and 7 ms
    to expand, much less than PostgreSQL takes to store and read 10 MB (zlib, used before, gives 0.75 MB
    but takes 30 and 24 ms: most of what re-posting an unchanged scan costs).  ``raw`` gives the bytes back;
    payloads stored as zlib or uncompressed stay readable.
    """

    LZ4 = "lz4"
    ZLIB = "zlib"

    report = models.OneToOneField(Report, primary_key=True, on_delete=models.CASCADE, related_name="payload")
    data = models.BinaryField()
    #: How ``data`` is stored: "lz4" (an lz4 block with its size), "zlib", or "" for the bytes as they are.
    encoding = models.CharField(max_length=8, blank=True, default="")

    @classmethod
    def pack(cls, raw: bytes) -> tuple[bytes, str]:
        """``(data, encoding)`` to store for these raw bytes."""
        return lz4.block.compress(raw), cls.LZ4

    @classmethod
    def unpack(cls, data: bytes | memoryview, encoding: str) -> bytes:
        """The raw bytes of a stored ``(data, encoding)``."""
        if encoding == cls.LZ4:
            return bytes(lz4.block.decompress(data))
        return zlib.decompress(data) if encoding == cls.ZLIB else bytes(data)

    @property
    def raw(self) -> bytes:
        return self.unpack(self.data, self.encoding)


class AdmissionRepeat(models.Model):
    """One more admission event of Vigil's webhook identical to the one ``report`` stored, within its minute.

    A repeat costs this row (one INSERT) instead of a report, its payload and a publish; the flush
    (services/admission_repeats.py, every minute) deletes a report's repeats and stores one event report counting
    them.  Retention keeps a report while a repeat names it (services/retention.py ``KEPT_WHILE_NAMED``).
    """

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="repeats")
    #: When the repeated decision was made: the latest becomes the flushed report's ``observed_at``.
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"repeat of {self.report_id} at {self.at:%Y-%m-%d %H:%M:%S}"
