"""The managers' weekly posture digest, beside the champions' nudge digest (``digest.py``), on the same day and hour.

Each manager gets, by email, one line per team they may read (``team_comparison``, the posture page's own
figures over the last 7 days): open findings and their change, criticals, overdue, SLA compliance, champions.
Written to the outbox under a key per person and week, so it is sent once (at least once) however often it runs.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Membership, Notification, NotificationEvent, Role
from dashboard.selectors.posture import Period
from dashboard.selectors.posture_teams import TeamRow, team_comparison
from dashboard.services.digest import digest_is_due
from dashboard.services.nudge_rules import NudgeConfig
from dashboard.services.nudges import week_start


def _change(value: int | None) -> str:
    if value is None:
        return "no figures a week ago"
    return "no change" if value == 0 else f"{value:+d} in 7 days"


def _line(row: TeamRow) -> str:
    sla = f"{round(100 * row.sla_compliance)}% fixed within SLA" if row.sla_compliance is not None else "nothing fixed with a due date"
    champions = ", ".join(row.champions) or "no champion"
    return (
        f"• {row.name}: {sum(row.open.values())} open ({_change(row.change)}), {row.open_critical} critical, "
        f"{row.overdue} overdue, {sla}; champion: {champions}"
    )


def posture_digest_text(rows: list[TeamRow], *, period: Period) -> str:
    link = f"{settings.VIGIL_BASE_URL}{reverse('posture-teams')}"
    worse = [row.name for row in rows if (row.change or 0) > 0]
    lines = [
        f"Your teams' security posture, {period.start.isoformat()} to {period.end.isoformat()}:",
        "",
        *(_line(row) for row in rows),
        "",
        f"More open findings than a week ago: {', '.join(worse)}." if worse else "No team has more open findings than a week ago.",
        f"Compare teams, time to fix and SLA compliance: {link}",
    ]
    return "\n".join(lines)


def posture_digest_queue(*, now: dt.datetime | None = None, config: NudgeConfig | None = None, force: bool = False) -> int:
    """Write this week's digest for every active manager with an email who has none yet; returns how many."""
    now = now or timezone.now()
    config = config or NudgeConfig.from_settings()
    if not force and not digest_is_due(now=now, config=config):
        return 0
    today = timezone.localdate(now)
    period = Period(today - dt.timedelta(days=6), today)
    week = week_start(today)
    manager_ids = set(Membership.objects.filter(role=Role.MANAGER).values_list("user_id", flat=True))
    written = 0
    for user in get_user_model().objects.filter(pk__in=manager_ids, is_active=True).exclude(email="").order_by("pk"):
        key = f"{NotificationEvent.POSTURE_DIGEST}:u{user.pk}:{week.isoformat()}"
        if Notification.objects.filter(key=key).exists():
            continue
        rows = team_comparison(user=user, period=period)
        if not rows:
            continue
        _, created = Notification.objects.get_or_create(
            key=key,
            defaults={
                "event": NotificationEvent.POSTURE_DIGEST, "recipient": user, "count": len(rows),
                "subject": f"Vigil: weekly posture of your {len(rows)} team{'s' if len(rows) != 1 else ''}",
                "text": posture_digest_text(rows, period=period), "link": f"{settings.VIGIL_BASE_URL}{reverse('posture-teams')}",
                "next_attempt_at": now, "created_at": now,
            },
        )  # fmt: skip
        written += int(created)
    return written
