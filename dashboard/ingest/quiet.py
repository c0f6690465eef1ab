"""Admission denials and runtime alerts are events: they resolve after a quiet period."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dashboard.ingest.apply import EVENT_FORMATS, close_findings
from dashboard.models import ACTIVE_STATUSES, Finding


def resolve_quiet_events(*, now: dt.datetime | None = None, quiet_days: int | None = None) -> int:
    """Fix event findings not seen for ``quiet_days`` (VIGIL_EVENT_QUIET_DAYS).  Idempotent."""
    now = now or timezone.now()
    days = settings.VIGIL_EVENT_QUIET_DAYS if quiet_days is None else quiet_days
    cutoff = now - dt.timedelta(days=days)
    ids = list(
        Finding.objects.filter(source__in=EVENT_FORMATS, status__in=ACTIVE_STATUSES, last_seen__lt=cutoff).values_list("id", flat=True)[
            :10000
        ]
    )
    with transaction.atomic():
        return close_findings(ids=ids, report=None, now=now, reason=f"quiet for {days} days")
