"""The team comparison: one row per team the caller may read, from its snapshots only (six queries, any team count)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Max, Sum

from dashboard.models import SNAPSHOT_SEVERITIES, DailySnapshot, Membership, Role
from dashboard.models.access import visible_teams
from dashboard.models.posture import TTF_BUCKETS, histogram_median
from dashboard.selectors.posture import Period

_END_FIELDS = ("team_id", *[f"open_{s}" for s in SNAPSHOT_SEVERITIES], *[f"overdue_{s}" for s in SNAPSHOT_SEVERITIES])


@dataclasses.dataclass(frozen=True)
class TeamRow:
    slug: str
    name: str
    open: dict[str, int]
    overdue: int
    sla_compliance: float | None
    median_ttf_days: float | None
    change: int | None
    champions: list[str]
    stale_images: int

    @property
    def open_critical(self) -> int:
        return self.open.get("critical", 0)

    @property
    def open_high(self) -> int:
        return self.open.get("high", 0)

    @property
    def trend(self) -> str:
        """up (worse: more open findings), down (better) or flat."""
        if not self.change:
            return "flat"
        return "up" if self.change > 0 else "down"

    def as_json(self) -> dict[str, Any]:
        return {
            "team": self.slug,
            "name": self.name,
            "open": self.open,
            "open_critical": self.open_critical,
            "open_high": self.open_high,
            "overdue": self.overdue,
            "sla_compliance": self.sla_compliance,
            "median_ttf_days": self.median_ttf_days,
            "change": self.change,
            "trend": self.trend,
            "champions": self.champions,
            "stale_images": self.stale_images,
        }


def _cumulative(values: Any) -> list[int]:
    size = len(TTF_BUCKETS) + 1
    return [int(v) for v in values] if isinstance(values, list) and len(values) == size else [0] * size


def team_comparison(*, user: Any, period: Period) -> list[TeamRow]:
    teams = list(visible_teams(user).order_by("name").values_list("id", "slug", "name"))
    ids = [pk for pk, _, _ in teams]
    snapshots = DailySnapshot.objects.filter(team_id__in=ids)
    end = snapshots.filter(date__lte=period.end, date__gte=period.start).aggregate(day=Max("date"))["day"]
    before = period.start - dt.timedelta(days=1)
    last = {row["team_id"]: row for row in snapshots.filter(date=end).values(*_END_FIELDS, "stale_images", "ttf_cumulative")} if end else {}
    first = {row["team_id"]: row for row in snapshots.filter(date=before).values(*_END_FIELDS, "ttf_cumulative")}
    sums: dict[int, dict[str, Any]] = {
        row["team_id"]: dict(row)
        for row in snapshots.filter(date__gte=period.start, date__lte=period.end)
        .order_by()
        .values("team_id")
        .annotate(due=Sum("fixed_with_due"), kept=Sum("fixed_in_sla"))
    }
    champions: dict[int, list[str]] = {}
    for team_id, username in (
        Membership.objects.filter(team_id__in=ids, role=Role.CHAMPION).order_by("user__username").values_list("team_id", "user__username")
    ):
        champions.setdefault(team_id, []).append(username)
    rows = []
    for pk, slug, name in teams:
        now, then = last.get(pk, {}), first.get(pk)
        total = sums.get(pk, {})
        open_now = {s: int(now.get(f"open_{s}", 0)) for s in SNAPSHOT_SEVERITIES}
        fixed = [
            a - b for a, b in zip(_cumulative(now.get("ttf_cumulative")), _cumulative((then or {}).get("ttf_cumulative")), strict=True)
        ]
        rows.append(
            TeamRow(
                slug=slug,
                name=name,
                open=open_now,
                overdue=sum(int(now.get(f"overdue_{s}", 0)) for s in SNAPSHOT_SEVERITIES),
                sla_compliance=round(total["kept"] / total["due"], 4) if total.get("due") else None,
                median_ttf_days=histogram_median([max(v, 0) for v in fixed]),
                change=sum(open_now.values()) - sum(int(then.get(f"open_{s}", 0)) for s in SNAPSHOT_SEVERITIES) if then else None,
                champions=champions.get(pk, []),
                stale_images=int(now.get("stale_images", 0)),
            )
        )
    return rows
