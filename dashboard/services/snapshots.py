"""Daily posture snapshots per team, for trend charts."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES, SEVERITY_ORDER, DailySnapshot, Finding, Team


def snapshot_take(*, day: dt.date | None = None) -> int:
    """Record each team's open findings by severity as they are now, for ``day`` (today by default).

    Idempotent: taking the snapshot again the same day overwrites it.
    """
    day = day or timezone.localdate()
    open_counts: dict[int, dict[str, int]] = {}
    active = Finding.objects.filter(status__in=ACTIVE_STATUSES, team__isnull=False).order_by()
    rows = active.values("team_id", "severity").annotate(n=Count("id"))
    for row in rows:
        open_counts.setdefault(row["team_id"], {})[row["severity"]] = row["n"]
    new = dict(Finding.objects.filter(first_seen__date=day, team__isnull=False).order_by().values_list("team_id").annotate(n=Count("id")))
    fixed = dict(Finding.objects.filter(fixed_at__date=day, team__isnull=False).order_by().values_list("team_id").annotate(n=Count("id")))
    teams = list(Team.objects.values_list("id", flat=True))
    for team_id in teams:
        counts = {severity: open_counts.get(team_id, {}).get(severity, 0) for severity in SEVERITY_ORDER}
        DailySnapshot.objects.update_or_create(
            team_id=team_id, date=day, defaults={"open_by_severity": counts, "new": new.get(team_id, 0), "fixed": fixed.get(team_id, 0)}
        )
    return len(teams)
