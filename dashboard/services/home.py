"""The champion's home: when "new since your last visit" counts from."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import User
from django.utils import timezone

from dashboard.models import HomeVisit

# --- the champion's home: "new since your last visit" ----------------------------------------------

#: Visits closer together than this are one session of work: "new since" keeps counting from before it.
VISIT_SESSION_GAP = dt.timedelta(hours=1)


def home_visit(*, user: User, now: dt.datetime | None = None) -> dt.datetime:
    """Record a visit to the home page; returns the moment "new since your last visit" counts from."""
    now = now or timezone.now()
    visit = HomeVisit.objects.filter(user=user).first()
    if visit is None:
        HomeVisit.objects.create(user=user, previous=None, last=now)
        return now - dt.timedelta(days=1)
    if now - visit.last > VISIT_SESSION_GAP:
        visit.previous = visit.last
    visit.last = now
    visit.save(update_fields=["previous", "last"])
    return visit.previous or now - dt.timedelta(days=1)
