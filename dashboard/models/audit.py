"""The append-only audit log of security-relevant actions: who, when, from where, what and why.

Rows are never changed nor deleted: ``save`` refuses updates, ``delete`` refuses, the
queryset refuses ``update``/``delete``, and on PostgreSQL a trigger refuses both in the
database itself.  References to people, tokens and teams are kept without database
constraints (and their names are copied), so deleting a user or a team never rewrites history.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or delete an audit record."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogIsAppendOnly("audit records cannot be changed")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AuditLogIsAppendOnly("audit records cannot be deleted")


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        TOKEN_CREATED = "token.created"  # noqa: S105
        TOKEN_REVOKED = "token.revoked"  # noqa: S105
        TOKEN_ROTATED = "token.rotated"  # noqa: S105
        TOKEN_NEW_IP = "token.new_ip"  # noqa: S105
        TOKEN_REFUSED_IP = "token.refused_ip"  # noqa: S105
        MEMBERSHIP_SET = "membership.set"
        MEMBERSHIP_REMOVED = "membership.removed"
        RULE_CREATED = "rule.created"
        RULE_CHANGED = "rule.changed"
        RULE_DELETED = "rule.deleted"
        OWNERSHIP_REASSIGNED = "ownership.reassigned"
        OWNER_SET = "ownership.set"
        STATUS_CHANGED = "finding.status"
        RISK_ACCEPTED = "finding.risk_accepted"
        LOGIN_LOCKED = "login.locked"
        TEAM_SETTINGS = "team.settings"
        POLICY_CHANGED = "policy.changed"
        SSO_USER_CREATED = "sso.user_created"
        ADMIN_CHANGED = "user.admin_changed"
        NOTIFICATIONS_CHANGED = "team.notifications"
        TRACKER_CHANGED = "tracker.changed"
        TICKET_REQUESTED = "ticket.requested"
        TICKET_CLOSED = "ticket.closed"

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_token = models.ForeignKey(
        "dashboard.ApiToken", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    #: Who, as text at the time: "alice", "token payments CI (AbC123xyz0)", "Vigil".
    actor_label = models.CharField(max_length=255)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    team = models.ForeignKey("dashboard.Team", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    team_slug = models.CharField(max_length=64, blank=True, default="")
    #: What the action was about: ("finding", "42"), ("token", "AbC123xyz0"), ("rule", "3").
    target_type = models.CharField(max_length=32, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    summary = models.CharField(max_length=500)
    reason = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"]), models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.summary}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or kwargs.get("force_update"):
            raise AuditLogIsAppendOnly("audit records cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise AuditLogIsAppendOnly("audit records cannot be deleted")
