"""Enforcement policies (an organisation default and one per team), their versions, and every decision made.

The decision itself is pure (dashboard/enforcement/decision.py); these rows are what it reads and what it leaves.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from dashboard.models.choices import Severity
from dashboard.models.images import Image
from dashboard.models.teams import Team
from dashboard.models.tokens import ApiToken


class PolicyMode(models.TextChoices):
    AUDIT = "audit"
    WARN = "warn"
    ENFORCE = "enforce"


class GateOutcome(models.TextChoices):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    WARN = "warn"
    FAIL = "fail"


#: The rule fields of a policy: what a version snapshot holds and what PUT may change.
POLICY_FIELDS = (
    "mode",
    "namespace_modes",
    "min_severity",
    "fix_required",
    "kev",
    "epss_min",
    "sla_overdue",
    "secrets",
    "rule_ids",
    "unknown_image",
)


class EnforcementPolicy(models.Model):
    """The policy of a team, or the organisation default (no team).  ``version`` counts its changes."""

    team = models.OneToOneField(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="enforcement_policy")
    mode = models.CharField(max_length=8, choices=PolicyMode.choices, default=PolicyMode.WARN)
    #: {"payments-prod": "enforce", "*-dev": "audit"}: namespace (exact or shell pattern) -> mode.
    namespace_modes = models.JSONField(default=dict, blank=True)
    #: Severity at or above which a finding violates; blank turns the rule off.
    min_severity = models.CharField(max_length=10, choices=Severity.choices, blank=True, default=Severity.CRITICAL)
    fix_required = models.BooleanField(default=True)
    kev = models.BooleanField(default=True)
    epss_min = models.FloatField(null=True, blank=True)
    sla_overdue = models.BooleanField(default=False)
    secrets = models.BooleanField(default=False)
    rule_ids = models.JSONField(default=list, blank=True)
    unknown_image = models.CharField(max_length=8, choices=GateOutcome.choices, default=GateOutcome.WARN)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField()
    updated_by_label = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            # One organisation default: at most one row without a team (a team's row is unique by its one-to-one key).
            models.UniqueConstraint(Coalesce("team", models.Value(0)), name="policy_one_per_team_or_default"),
        ]
        verbose_name_plural = "enforcement policies"

    def __str__(self) -> str:
        return f"policy of {self.team.slug if self.team_id and self.team else 'the organisation'} v{self.version}"

    def rule_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in POLICY_FIELDS}


class EnforcementPolicyVersion(models.Model):
    """One version of a policy, as it was after a change: who, when, why, and every rule."""

    policy = models.ForeignKey(EnforcementPolicy, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    values = models.JSONField()
    changed = models.JSONField(default=list, blank=True)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by_label = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="policy_version_unique")]

    def __str__(self) -> str:
        return f"{self.policy} version {self.version}"


class GateDecision(models.Model):
    """One decision at a point of enforcement: what was asked, under which policy version, the answer and why."""

    class Point(models.TextChoices):
        CI = "ci"
        ADMISSION = "admission"
        RUNTIME = "runtime"

    created_at = models.DateTimeField()
    point = models.CharField(max_length=16, choices=Point.choices, default=Point.CI)
    image_ref = models.CharField(max_length=600)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="gate_decisions", db_index=False)
    #: The team the decision was made for (the image's owner; at admission, the namespace's), who may read it.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="gate_decisions", db_index=False)
    #: Whose policy decided: a team's slug, or "" for the organisation default; and its version (0: built-in).
    policy_team = models.CharField(max_length=64, blank=True, default="")
    policy_version = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=8, choices=PolicyMode.choices)
    decision = models.CharField(max_length=8, choices=GateOutcome.choices)
    unknown_image = models.BooleanField(default=False)
    #: [{"finding", "rule_id", "severity", "rules"}], the first reasons (reason_count says how many there were).
    reasons = models.JSONField(default=list, blank=True)
    reason_count = models.PositiveIntegerField(default=0)
    cluster = models.CharField(max_length=255, blank=True, default="")
    namespace = models.CharField(max_length=255, blank=True, default="")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    actor_label = models.CharField(max_length=255, blank=True, default="")
    report = models.ForeignKey("dashboard.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="gatedecision_team_idx"),
            models.Index(fields=["image", "-created_at"], name="gatedecision_image_idx"),
            # Few decisions name a report (a gate asked with POST ?wait=): deleting a report (retention) finds them here.
            models.Index(fields=["report"], condition=models.Q(report__isnull=False), name="gatedecision_report_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.point} {self.decision} {self.image_ref}"


class DecisionChange(models.Model):
    """A change to what enforcement decisions read, written by PostgreSQL's triggers (migration 0008), never by Vigil.

    One row per statement and image whose findings, versions or row changed (``image_id``), or ``GLOBAL`` for a
    change that may move any decision: policies, ownership rules, teams, risk acceptances, a token's teams.  The
    decision memo (selectors/decision_memo.py) keys what it keeps on these rows' count and highest id per image, read
    in one statement before the inputs; a change committed afterwards makes a new key, so no decision is ever answered
    from inputs older than the last committed change.  Rows are only added (no lock, nothing for writers to wait on)
    and folded every minute (``decision_changes_fold``).  Not a foreign key: the image may be deleted meanwhile.
    """

    GLOBAL = 0

    image_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["image_id", "id"], name="decision_change_image")]
