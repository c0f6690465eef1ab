"""Reads for a team's notifications: its channels (URLs masked by whoever renders them) and what was sent lately."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from dashboard.models import Notification, NotificationChannel, Team
from dashboard.selectors.teams import team_get

#: Notifications listed on the team settings page.
RECENT = 20


def channel_list(*, team: Team) -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.filter(team=team).select_related("team").order_by("name", "id")


def channel_get(*, user: Any, slug: str, pk: int) -> NotificationChannel:
    """A channel of a team the caller may read; 404 otherwise, like a channel that does not exist."""
    team = team_get(user=user, slug=slug)
    channel = NotificationChannel.objects.filter(team=team, pk=pk).select_related("team").first()
    if channel is None:
        raise Http404("no such channel")
    return channel


def recent_notifications(*, team: Team) -> list[Notification]:
    return list(Notification.objects.filter(team=team).select_related("channel").order_by("-created_at", "-id")[:RECENT])
