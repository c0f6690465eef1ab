"""Triage: risk acceptances, auto-triage rules, comments, threat intelligence (KEV, EPSS), visits."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.choices import Kind, Severity
from dashboard.models.findings import Finding
from dashboard.models.teams import Team


class RiskAcceptance(models.Model):
    """A decision to live with some findings until a date: a reason, a requester, an approver and an expiry.

    It covers the findings listed in ``findings`` and, when a scope is set (for example
    "this CVE in every image under registry.example.com/payments/*"), findings of the team
    that match the scope when they first appear or reopen.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="risk_acceptances")
    findings = models.ManyToManyField(Finding, blank=True, related_name="risk_acceptances")
    #: Scope definition; empty fields match anything.  A scope needs at least a rule id.
    scope_rule_id = models.CharField(max_length=255, blank=True, default="")
    scope_image_pattern = models.CharField(max_length=512, blank=True, default="")
    scope_package = models.CharField(max_length=255, blank=True, default="")
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: A machine requester (an admin-scope token) when there is no person.
    requested_by_label = models.CharField(max_length=200, blank=True, default="")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    expires = models.DateField()
    rule = models.ForeignKey("dashboard.TriageRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="acceptances")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "expires"]), models.Index(fields=["team", "state"])]

    def __str__(self) -> str:
        return f"risk acceptance #{self.pk} ({self.state}, until {self.expires})"

    @property
    def has_scope(self) -> bool:
        return bool(self.scope_rule_id)

    @property
    def requester_name(self) -> str:
        return str(self.requested_by) if self.requested_by_id else self.requested_by_label or "Vigil"


class TriageRule(models.Model):
    """Auto-triage at ingest: findings that match get an action, recorded as done by the rule.

    Patterns are shell globs (``*`` and ``?``); empty fields match anything.  A rule
    without a team applies to every team (only staff create those).
    """

    class Action(models.TextChoices):
        FALSE_POSITIVE = "false_positive"
        ACCEPT_RISK = "accept_risk"
        SET_SEVERITY = "set_severity"

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="triage_rules")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    match_rule_id = models.CharField(max_length=255, blank=True, default="")
    match_package = models.CharField(max_length=255, blank=True, default="")
    match_image = models.CharField(max_length=512, blank=True, default="")
    match_path = models.CharField(max_length=1000, blank=True, default="")
    match_kind = models.CharField(max_length=20, choices=Kind.choices, blank=True, default="")
    action = models.CharField(max_length=20, choices=Action.choices)
    #: Match only findings a CycloneDX VEX statement calls ``not_affected`` with a justification (a false
    #: positive rule then gives that justification as the reason).  Off by default: VEX stays a hint.
    match_vex_not_affected = models.BooleanField(default=False)
    #: accept_risk: until this date.  set_severity: the new severity.
    accept_until = models.DateField(null=True, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, blank=True, default="")
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"rule #{self.pk} {self.name}"


class Comment(models.Model):
    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_label = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["finding", "created_at"])]

    def __str__(self) -> str:
        return f"comment #{self.pk} on finding {self.finding_id}"


class KevEntry(models.Model):
    """One entry of the CISA Known Exploited Vulnerabilities catalogue."""

    cve = models.CharField(max_length=64, unique=True)
    vendor_project = models.CharField(max_length=255, blank=True, default="")
    product = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=500, blank=True, default="")
    date_added = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    required_action = models.TextField(blank=True, default="")
    known_ransomware = models.CharField(max_length=32, blank=True, default="")
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ["cve"]
        verbose_name = "KEV entry"
        verbose_name_plural = "KEV entries"

    def __str__(self) -> str:
        return self.cve


class EpssScore(models.Model):
    """The latest FIRST EPSS score of one CVE: probability of exploitation in the next 30 days."""

    cve = models.CharField(max_length=64, unique=True)
    epss = models.FloatField()
    percentile = models.FloatField()
    date = models.DateField(null=True, blank=True)
    model_version = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["cve"]
        verbose_name = "EPSS score"

    def __str__(self) -> str:
        return f"{self.cve} {self.epss}"


class HomeVisit(models.Model):
    """When a person last looked at their home page, for "new since your last visit"."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="home_visit")
    #: The start of the previous session of work: "new since" counts from here.
    previous = models.DateTimeField(null=True, blank=True)
    last = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user} last home visit {self.last}"
