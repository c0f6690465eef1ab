"""Notifications: a team's channels (chat webhook, email) with the events each one wants, and an outbox.

Detection writes ``Notification`` rows, one per (event group, channel), under a unique ``key``: finding the
same event twice writes nothing new.  Delivery sends pending rows and marks them sent only after the
receiver accepted them, so a crash in between sends again (at least once, never lost).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.choices import Role
from dashboard.models.teams import Team


class NotificationEvent(models.TextChoices):
    """The events that need a person now (the rules a channel subscribes to)."""

    NEW_CRITICAL = "new_critical", "A new critical or KEV finding"
    SLA_TOMORROW = "sla_tomorrow", "A finding's SLA breaches tomorrow"
    ADMISSION_DENIAL = "admission_denial", "An admission denial in production"
    RUNTIME_ALERT = "runtime_alert", "A runtime alert of high severity"
    ACCEPTANCE_EXPIRING = "acceptance_expiring", "A risk acceptance expires within 7 days"
    REPORT_PROBLEM = "report_problem", "A report failed or holds closures"
    #: Not a team rule: the managers' weekly posture digest goes through the same outbox.
    POSTURE_DIGEST = "posture_digest", "Weekly posture digest"


#: What a team may subscribe a channel to.
TEAM_EVENTS = tuple(event for event in NotificationEvent.values if event != NotificationEvent.POSTURE_DIGEST)


class NotificationChannel(models.Model):
    """Where a team's notifications go: an incoming webhook (Slack, Microsoft Teams) or its members' email."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="notification_channels")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=100)
    #: The webhook URL: a secret (whoever has it may post to the chat), never shown back in full.
    url = models.URLField(max_length=1000, blank=True, default="")
    #: Email: the roles of the team's members who get it (empty: every member).
    roles = models.JSONField(default=list, blank=True)
    #: The rules: which NotificationEvent values this channel gets.
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["team_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.team} {self.kind} {self.name}"

    @property
    def masked_url(self) -> str:
        """Scheme and host, and the last four characters: enough to recognise it, not to post to it."""
        if not self.url:
            return ""
        scheme, _, rest = self.url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        return f"{scheme}://{host}/…{self.url[-4:]}"

    def role_values(self) -> list[str]:
        return [role for role in self.roles if role in Role.values]


class Notification(models.Model):
    """One message to send: to a channel of a team, or (posture digest) to one person."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    #: What makes it the same notification: event, group (report, team and day...) and channel or person.
    key = models.CharField(max_length=300, unique=True)
    event = models.CharField(max_length=32, choices=NotificationEvent.choices)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.ForeignKey(NotificationChannel, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=300)
    #: The message: why, what, and the link (absolute, from VIGIL_BASE_URL).
    text = models.TextField()
    link = models.URLField(max_length=1000)
    #: How many findings (or decisions, acceptances) the message groups.
    count = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(state="pending"), name="notification_pending_idx"),
            models.Index(fields=["channel", "-sent_at"], name="notification_channel_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.key} ({self.state})"


class NotificationCursor(models.Model):
    """How far detection has read a source (by time): the next scan reads from a little before it."""

    name = models.CharField(max_length=64, unique=True)
    position = models.DateTimeField()
    #: The ids already read among those a scan reads again (the last LOOKBACK before ``position``).
    seen = models.JSONField(default=list, blank=True)
