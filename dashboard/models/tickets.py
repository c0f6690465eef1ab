"""Tickets in a team's own issue tracker (Jira, GitHub, GitLab), linked to the findings they are about."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.findings import Finding
from dashboard.models.teams import Team


class TrackerKind(models.TextChoices):
    JIRA = "jira"
    GITHUB = "github"
    GITLAB = "gitlab"


class TrackerConfig(models.Model):
    """Where a team's tickets go: one tracker per team."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="tracker")
    kind = models.CharField(max_length=16, choices=TrackerKind.choices)
    #: https://acme.atlassian.net, https://api.github.com (or a GitHub Enterprise API root), https://gitlab.com.
    base_url = models.URLField(max_length=500)
    #: Jira project key, GitHub "owner/repo", GitLab project id or "group/project".
    project = models.CharField(max_length=255)
    #: Jira: the account's email (basic auth with the API token); unused by GitHub and GitLab.
    username = models.CharField(max_length=254, blank=True, default="")
    #: The API token; never shown back in full (``secret_hint``).
    secret = models.CharField(max_length=500)
    #: What the tracker's webhook proves itself with: GitHub's and Jira's HMAC key, GitLab's token.
    webhook_secret = models.CharField(max_length=128)
    #: Jira's issue type name.
    issue_type = models.CharField(max_length=64, blank=True, default="Bug")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.team} {self.kind} {self.project}"

    @property
    def secret_hint(self) -> str:
        return f"…{self.secret[-4:]}" if len(self.secret) > 8 else "set"


class Ticket(models.Model):
    """One issue in a tracker, for one finding, a selection or a fix group (one upgrade fixing many findings)."""

    class State(models.TextChoices):
        PENDING = "pending"  # requested; the task has not created it in the tracker yet
        OPEN = "open"
        CLOSED = "closed"
        FAILED = "failed"

    tracker = models.ForeignKey(TrackerConfig, on_delete=models.CASCADE, related_name="tickets")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tickets", db_index=False)
    #: What it is about: "finding:12", "fix:<image>:<package>:<fixed version>", "selection:<hash>".
    subject = models.CharField(max_length=600)
    title = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    #: Jira issue key, GitHub issue number, GitLab issue iid.
    external_id = models.CharField(max_length=64, blank=True, default="")
    url = models.URLField(max_length=1000, blank=True, default="")
    error = models.TextField(blank=True, default="")
    findings = models.ManyToManyField(Finding, through="TicketLink", related_name="tickets")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tracker", "subject"], name="ticket_tracker_subject_unique"),
            models.UniqueConstraint(
                fields=["tracker", "external_id"], condition=~models.Q(external_id=""), name="ticket_tracker_external_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tracker.kind} {self.external_id or self.subject}"


class TicketLink(models.Model):
    """A finding's ticket in one tracker: never two for the same tracker."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links")
    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="ticket_links", db_index=False)
    tracker = models.ForeignKey(TrackerConfig, on_delete=models.CASCADE, related_name="+", db_index=False)
    #: The ticket was closed but a later scan still saw the finding (it reopened).
    seen_after_close = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["finding", "tracker"], name="ticket_link_finding_tracker_unique")]
