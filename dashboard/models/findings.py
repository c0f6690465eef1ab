from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Concat

from dashboard.models.access import visible_team_filter
from dashboard.models.choices import ACTIVE_STATUSES, SEVERITY_ORDER, Kind, Severity, Status, Stream
from dashboard.models.images import Image
from dashboard.models.reports import Report
from dashboard.models.teams import Team

#: Between the searched fields in ``Finding.search_text``: a search for text spanning two fields finds nothing.
SEARCH_SEPARATOR = "\n"


class FindingQuerySet(models.QuerySet["Finding"]):
    def visible_to(self, user: Any) -> FindingQuerySet:
        """The one access rule (dashboard/models/access.py): staff see everything, unowned included;
        people see the teams they are members of (managers: the teams granted to them); tokens their teams."""
        if user is None or not user.is_authenticated:
            return self.none()
        scope = visible_team_filter(user)
        return self if scope is None else self.filter(**scope)

    def active(self) -> FindingQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)


class Finding(models.Model):
    """One finding, identified by its fingerprint across reports, tags and digests."""

    # Unique by a constraint (Meta), not unique=True: PostgreSQL then has no second, LIKE-only index to maintain.
    fingerprint = models.CharField(max_length=64)
    # No single-column indexes: the composite indexes below start with these columns.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings", db_index=False)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=32)
    stream = models.CharField(max_length=16, choices=Stream.choices, default=Stream.SCAN)
    #: The lifecycle scope the finding was last reported in (closing by absence stays inside it).
    scope_key = models.CharField(max_length=600)
    rule_id = models.CharField(max_length=255)
    title = models.CharField(max_length=500, blank=True, default="")
    description = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    package_name = models.CharField(max_length=255, blank=True, default="")
    package_version = models.CharField(max_length=255, blank=True, default="")
    fixed_version = models.CharField(max_length=255, blank=True, default="")
    package_type = models.CharField(max_length=64, blank=True, default="")
    package_path = models.CharField(max_length=1000, blank=True, default="")
    resource_cluster = models.CharField(max_length=255, blank=True, default="")
    resource_namespace = models.CharField(max_length=255, blank=True, default="")
    resource_kind = models.CharField(max_length=100, blank=True, default="")
    resource_name = models.CharField(max_length=255, blank=True, default="")
    cvss = models.FloatField(null=True, blank=True)
    epss = models.FloatField(null=True, blank=True)
    kev = models.BooleanField(default=False)
    cwe = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    #: Hash of the scanner's content as last ingested (write.content_hash): re-imports compare it, not every column.
    content_hash = models.CharField(max_length=32, blank=True, default="")
    #: Digest of the report entry that content was normalised from (ingest/write.stored_digest; "" when none): a
    #: re-scan recognises an unchanged entry by it before normalising it (ingest/unchanged.py).
    entry_hash = models.CharField(max_length=32, blank=True, default="")
    status_hint = models.CharField(max_length=32, blank=True, default="")
    risk_score = models.FloatField(default=0)
    #: Times the finding was reported (events for admission/runtime; reports for scans).
    occurrences = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    status_changed_at = models.DateTimeField()
    fixed_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    # Mostly empty foreign keys are indexed only where set (partial indexes in Meta): inserts skip them.
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    last_report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: The report that first saw it: a finding's creation is recorded here (with ``first_seen``), not as an event.
    #: Indexed: a report's "new" outcome lists its findings by it.
    first_report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Ownership: how the team was decided, and the rule that decided it.
    owner_source = models.CharField(max_length=16, blank=True, default="")
    owner_rule = models.ForeignKey(
        "dashboard.OwnershipRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="findings", db_index=False
    )
    owner_reason = models.CharField(max_length=300, blank=True, default="")
    # Triage: threat intelligence, exposure, risk parts and the SLA clock.
    epss_percentile = models.FloatField(null=True, blank=True)
    kev_due_date = models.DateField(null=True, blank=True)
    #: Deployed or alerting: the same image also has findings in the admission or runtime stream.
    exposed = models.BooleanField(default=False)
    #: The parts of risk_score, e.g. {"severity": 41.3, "epss": 2.0, "kev": 15.0, ...}.
    risk_parts = models.JSONField(default=dict, blank=True)
    #: When the SLA clock started (first seen, or the last reopening when clocks restart).
    sla_started_on = models.DateField(null=True, blank=True)
    #: critical 6 ... unknown 1, computed by the database, so "sort by severity" can use an index.
    severity_rank = models.GeneratedField(
        expression=models.Case(
            *[models.When(severity=name, then=models.Value(len(SEVERITY_ORDER) - index)) for index, name in enumerate(SEVERITY_ORDER)],
            default=models.Value(0),
            output_field=models.SmallIntegerField(),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
    )

    #: What the queue's free-text search looks in (rule id, title, package), one column for one trigram index
    #: (0004_events_search); computed by the database, so no path that writes these fields can leave it behind.
    search_text = models.GeneratedField(
        expression=Concat("rule_id", models.Value(SEARCH_SEPARATOR), "title", models.Value(SEARCH_SEPARATOR), "package_name"),
        output_field=models.TextField(),
        db_persist=True,
    )

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["-risk_score", "id"]
        constraints = [models.UniqueConstraint(fields=["fingerprint"], name="finding_fingerprint_unique")]
        indexes = [
            models.Index(fields=["team", "status", "severity"]),
            models.Index(fields=["image", "status"]),
            models.Index(fields=["scope_key", "status"]),
            models.Index(fields=["status", "-risk_score"]),
            # Triage queue: keyset pagination per team, and intel lookups by CVE.
            models.Index(fields=["team", "-risk_score", "id"], name="finding_team_risk_idx"),
            models.Index(fields=["team", "due_date", "id"], name="finding_team_due_idx"),
            models.Index(fields=["team", "-first_seen", "id"], name="finding_team_first_seen_idx"),
            models.Index(fields=["team", "-severity_rank", "-risk_score", "id"], name="finding_team_severity_idx"),
            models.Index(fields=["team", "stream", "-last_seen"], name="finding_team_stream_seen_idx"),
            models.Index(fields=["team", "-risk_score", "id"], condition=models.Q(kev=True), name="finding_team_kev_idx"),
            models.Index(fields=["team", "-epss"], name="finding_team_epss_idx"),
            models.Index(fields=["rule_id"], name="finding_rule_id_idx"),
            models.Index(fields=["assignee"], condition=models.Q(assignee__isnull=False), name="finding_assignee_idx"),
            models.Index(fields=["owner_rule"], condition=models.Q(owner_rule__isnull=False), name="finding_owner_rule_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.package_name or self.resource_name}".strip()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class FindingOccurrence(models.Model):
    """Where a finding was seen: a tag/digest of its image, or a workload, first and last."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="occurrence_set", db_index=False)  # occurrence_unique
    tag = models.CharField(max_length=128, blank=True, default="")
    digest = models.CharField(max_length=128, blank=True, default="")
    workload = models.CharField(max_length=255, blank=True, default="")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["finding", "tag", "digest", "workload"], name="occurrence_unique")]


class FindingEvent(models.Model):
    """Every change to a finding: who (a person, a report or a rule), when and why.  Its creation is on the finding
    (``first_seen``, ``first_report``), not an event."""

    class Type(models.TextChoices):
        REOPENED = "reopened"
        FIXED = "fixed"
        STATUS = "status"
        ASSIGNED = "assigned"
        COMMENT = "comment"
        OWNER = "owner"  # ownership: the team changed, by a rule or by hand
        # Triage
        SEVERITY = "severity"
        ACCEPTANCE = "acceptance"
        UNDONE = "undone"

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="events", db_index=False)  # (finding, -created_at)
    type = models.CharField(max_length=16, choices=Type.choices)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.SET_NULL, related_name="finding_events")
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    # Triage: the auto-triage rule that acted, the bulk action it belongs to,
    # the event an undo reverts, and extras (previous assignee, severity, acceptance, token).
    triage_rule = models.ForeignKey(
        "dashboard.TriageRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False
    )
    batch = models.UUIDField(null=True, blank=True)
    undoes = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by", db_index=False)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Ingest writes thousands of events at once: the mostly empty columns are indexed only where set.
        indexes = [
            models.Index(fields=["finding", "-created_at"]),
            models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="event_actor_idx"),
            models.Index(fields=["triage_rule"], condition=models.Q(triage_rule__isnull=False), name="event_triage_rule_idx"),
            models.Index(fields=["batch"], condition=models.Q(batch__isnull=False), name="event_batch_idx"),
            models.Index(fields=["undoes"], condition=models.Q(undoes__isnull=False), name="event_undoes_idx"),
        ]


class LifecycleScope(models.Model):
    """One row per lifecycle scope, locked while a report of that scope is applied."""

    key = models.CharField(max_length=600, unique=True)
    #: The last report applied to this scope (a repeated scan is only recorded without parsing if it repeats this one).
    last_report = models.ForeignKey("dashboard.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
