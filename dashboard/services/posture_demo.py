"""Posture in the demo: a few of Payments' champion's decisions spread over the history, then the daily
snapshots of all 90 days rebuilt from the findings' events."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.models import Finding, Status
from dashboard.services import triage
from dashboard.services.snapshots import snapshots_backfill

#: The demo's history is 90 days; one more so "the previous period" of a 90-day view has a start.
DEMO_DAYS = 92
#: (days ago, status): what the champion decided about one open finding of Payments that day.
DECISIONS = [(50, Status.TRIAGED), (35, Status.FALSE_POSITIVE), (28, Status.IN_PROGRESS), (15, Status.FALSE_POSITIVE)]


def posture_demo(*, champion_username: str = "champion") -> int:
    champion = get_user_model().objects.filter(username=champion_username).first()
    now = timezone.now()
    for days_ago, status in DECISIONS if champion is not None else []:
        when = now - dt.timedelta(days=days_ago)
        pick = Finding.objects.filter(team__slug="payments", status=Status.OPEN, first_seen__lt=when).order_by("id").first()
        if pick is not None:
            triage.findings_set_status(ids=[pick.pk], by=champion, status=status, reason="demo: not reachable in our build", now=when)
    return snapshots_backfill(days=DEMO_DAYS)
