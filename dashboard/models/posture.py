"""Daily posture snapshots: one row per team and day, and one for the organisation (team empty).

Posture pages and the posture API read only these rows, never the findings table, so they stay fast at a
million findings.  Per-severity figures are columns (not JSON) so a sum across teams is one SQL aggregate.
"""

from __future__ import annotations

from django.db import models

from dashboard.models.teams import Team

SNAPSHOT_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
#: Upper bounds (days, exclusive) of the time-to-fix histogram buckets; a last bucket holds the rest.
TTF_BUCKETS = (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365)
#: Age of open findings (days since first seen): name, lowest, highest (None: no limit).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-30", 8, 30),
    ("31-90", 31, 90),
    ("91-180", 91, 180),
    ("181+", 181, None),
)


def ttf_bucket(days: float) -> int:
    for index, bound in enumerate(TTF_BUCKETS):
        if days < bound:
            return index
    return len(TTF_BUCKETS)


def histogram_median(counts: list[int]) -> float | None:
    """The median of a bucketed histogram, interpolated linearly inside the bucket that holds it."""
    total = sum(counts)
    if total <= 0:
        return None
    half, seen = total / 2, 0
    for index, n in enumerate(counts):
        if n and seen + n >= half:
            low = TTF_BUCKETS[index - 1] if index > 0 else 0
            high = TTF_BUCKETS[index] if index < len(TTF_BUCKETS) else low * 2
            return round(low + (high - low) * (half - seen) / n, 1)
        seen += n
    return None


class DailySnapshot(models.Model):
    """Posture at the end of a calendar day (TIME_ZONE), and what happened that day."""

    #: Empty for the organisation's row (every team, and unowned findings).
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots", db_index=False)
    date = models.DateField()
    #: When it was taken; a snapshot taken at or after the end of its day is final.
    taken_at = models.DateTimeField()
    open_critical = models.PositiveIntegerField(default=0)
    open_high = models.PositiveIntegerField(default=0)
    open_medium = models.PositiveIntegerField(default=0)
    open_low = models.PositiveIntegerField(default=0)
    open_info = models.PositiveIntegerField(default=0)
    open_unknown = models.PositiveIntegerField(default=0)
    overdue_critical = models.PositiveIntegerField(default=0)
    overdue_high = models.PositiveIntegerField(default=0)
    overdue_medium = models.PositiveIntegerField(default=0)
    overdue_low = models.PositiveIntegerField(default=0)
    overdue_info = models.PositiveIntegerField(default=0)
    overdue_unknown = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    fixed = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    risk_accepted = models.PositiveIntegerField(default=0)
    false_positive = models.PositiveIntegerField(default=0)
    #: Findings fixed that day that had a due date, and those of them fixed on or before it.
    fixed_with_due = models.PositiveIntegerField(default=0)
    fixed_in_sla = models.PositiveIntegerField(default=0)
    #: Time to fix of the findings fixed that day: count and sum of days per severity (means add up across teams).
    ttf_n_critical = models.PositiveIntegerField(default=0)
    ttf_n_high = models.PositiveIntegerField(default=0)
    ttf_n_medium = models.PositiveIntegerField(default=0)
    ttf_n_low = models.PositiveIntegerField(default=0)
    ttf_n_info = models.PositiveIntegerField(default=0)
    ttf_n_unknown = models.PositiveIntegerField(default=0)
    ttf_days_critical = models.FloatField(default=0)
    ttf_days_high = models.FloatField(default=0)
    ttf_days_medium = models.FloatField(default=0)
    ttf_days_low = models.FloatField(default=0)
    ttf_days_info = models.FloatField(default=0)
    ttf_days_unknown = models.FloatField(default=0)
    #: {severity: median days} of the findings fixed that day.
    ttf_median = models.JSONField(default=dict, blank=True)
    #: Times to fix of every finding fixed since the first of an unbroken run of daily snapshots, counted in
    #: the buckets of dashboard.services.models.posture.TTF_BUCKETS: a period's median is end minus start.
    ttf_cumulative = models.JSONField(default=list, blank=True)
    #: Open findings by age bucket, {"0-7": n, "8-30": n, ...}.
    open_by_age = models.JSONField(default=dict, blank=True)
    admission_denials = models.PositiveIntegerField(default=0)
    runtime_alerts = models.PositiveIntegerField(default=0)
    #: Open findings without a team (organisation row only).
    unowned = models.PositiveIntegerField(default=0)
    #: Images not scanned for 14 days or more.
    stale_images = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["team", "date"], condition=models.Q(team__isnull=False), name="snapshot_team_date_unique"),
            models.UniqueConstraint(fields=["date"], condition=models.Q(team__isnull=True), name="snapshot_org_date_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.team or 'organisation'} {self.date}"

    @property
    def open_by_severity(self) -> dict[str, int]:
        return {severity: getattr(self, f"open_{severity}") for severity in SNAPSHOT_SEVERITIES}

    @property
    def overdue_by_severity(self) -> dict[str, int]:
        return {severity: getattr(self, f"overdue_{severity}") for severity in SNAPSHOT_SEVERITIES}

    @property
    def open_total(self) -> int:
        return sum(self.open_by_severity.values())

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue_by_severity.values())


class FirstSeenCount(models.Model):
    """Findings of a team first seen on a day, per finding class and the stream that caught them (shift left).

    Written with the team's daily snapshot, by the live snapshot and by the backfill alike.  One narrow row per
    (team, day, class, stream) rather than a JSON document per snapshot, so a period's shares are one SQL
    aggregate over the period's rows.  Unowned findings are on no team's page and are not counted here.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    date = models.DateField()
    #: One of Vigil's finding classes (``vigil:`` dropped), or ``other``; a finding in two classes counts in both.
    klass = models.CharField(max_length=64)
    stream = models.CharField(max_length=16)
    n = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["date", "team", "klass", "stream"], name="first_seen_count_unique")]

    def __str__(self) -> str:
        return f"{self.team_id} {self.date} {self.klass} {self.stream}: {self.n}"


class ActiveFindingDelta(models.Model):
    """Changes to the number of active findings per team and severity; their sum is what is active now.

    Written by PostgreSQL itself: statement triggers on the findings table (migration 0018) add one row per
    (team, severity) whose count a statement changed, so every write path, ORM, bulk SQL or COPY, keeps the sum
    exact, and concurrent writers only ever insert (no counter row to lock).  The hourly snapshot task folds the
    rows into one per (team, severity) (services/active_counts.py).  ``team_id`` is a plain column: a deleted
    team's rows sum to zero once its findings moved.
    """

    team_id = models.BigIntegerField(null=True)
    severity = models.CharField(max_length=16)
    n = models.IntegerField()
