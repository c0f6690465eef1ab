"""Training nudges: a short pointer to a module when a team keeps making the same mistake."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.findings import Finding
from dashboard.models.reports import Report
from dashboard.models.teams import Team
from dashboard.models.training import Topic, TrainingModule


class NudgeRule(models.TextChoices):
    """Why a nudge was created (the rules live in dashboard/services/nudge_rules.py)."""

    RUNTIME_IN_PRODUCTION = "runtime_in_production", "A runtime alert fired in production"
    REAPPEARED = "reappeared", "A class came back after it was fixed"
    REPEATED_DENIALS = "repeated_denials", "The same policy denied deploys repeatedly"
    OUTDATED_BASE = "outdated_base", "A new image starts from an outdated base"
    REPEATED_CLASS = "repeated_class", "The same class appeared repeatedly"


class NudgeState(models.TextChoices):
    NEW = "new"
    OPENED = "opened"
    DONE = "done"
    SNOOZED = "snoozed"
    DISMISSED = "dismissed"


#: States in which a nudge still asks for attention (snoozed ones come back when the snooze ends).
ACTIVE_NUDGE_STATES = (NudgeState.NEW, NudgeState.OPENED, NudgeState.SNOOZED)


class Nudge(models.Model):
    """One nudge for one team about one topic.  At most one per (team, topic, week): computing is idempotent."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="nudges")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="nudges")
    module = models.ForeignKey(TrainingModule, null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges")
    rule = models.CharField(max_length=32, choices=NudgeRule.choices)
    state = models.CharField(max_length=16, choices=NudgeState.choices, default=NudgeState.NEW)
    #: "Why you see this", in plain words.
    reason = models.TextField()
    findings = models.ManyToManyField(Finding, related_name="nudges", blank=True)
    #: How many findings triggered it (kept even if findings are deleted later).
    findings_count = models.PositiveIntegerField(default=0)
    #: Monday of the week the nudge was made: the idempotency key with team and topic.
    period = models.DateField()
    created_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    shared_with_team = models.BooleanField(default=False)
    snooze_until = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.TextField(blank=True, default="")
    acted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["team", "topic", "period"], name="nudge_team_topic_period_unique")]
        indexes = [models.Index(fields=["team", "state", "-created_at"]), models.Index(fields=["team", "topic", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.team} · {self.topic} ({self.state})"


class EventSighting(models.Model):
    """An event-stream report (an admission denial, a runtime alert) touching a finding.

    Events are aggregated into one finding that only counts occurrences; sightings keep *when*,
    so rules can count "denied 3 times this week".  Recorded after ingest.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="sightings")
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["finding", "report"], name="sighting_finding_report_unique")]
        indexes = [models.Index(fields=["team", "seen_at"])]


class TeamWebhook(models.Model):
    """A Slack- or Teams-compatible incoming webhook that gets the team's weekly digest ({"text": ...})."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="nudge_webhook")
    url = models.URLField(max_length=1000)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.team} digest webhook"


class NudgeDigest(models.Model):
    """One weekly digest sent (to a champion's email or to the team webhook): sending is idempotent per week."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    #: The email address, or "webhook".
    recipient = models.CharField(max_length=254)
    week = models.DateField()
    nudges = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-week", "team_id"]
        constraints = [models.UniqueConstraint(fields=["team", "channel", "recipient", "week"], name="digest_team_channel_week_unique")]
