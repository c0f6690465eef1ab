"""Posture reads: daily snapshots (a few aggregates over at most days x teams rows), and for ``open_now``, the API
summary's count of what is open at this moment, the active-finding deltas PostgreSQL's triggers keep.

Who sees what: the teams ``visible_teams`` gives (managers their granted teams, champions and members their
own, tokens theirs).  Staff read the organisation's row (every team and unowned findings); anyone else the
sum of their teams' rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, SNAPSHOT_SEVERITIES, ActiveFindingDelta, DailySnapshot, Finding, FirstSeenCount, Team
from dashboard.models.access import sees_everything, visible_teams

PERIODS = (30, 90, 365)
MAX_DAYS = 3650
COUNTS = ("new", "fixed", "reopened", "risk_accepted", "false_positive", "fixed_with_due", "fixed_in_sla")
EXTRAS = ("admission_denials", "runtime_alerts", "unowned", "stale_images")
SUMMED = (
    *[f"open_{s}" for s in SNAPSHOT_SEVERITIES],
    *[f"overdue_{s}" for s in SNAPSHOT_SEVERITIES],
    *COUNTS,
    *[f"ttf_n_{s}" for s in SNAPSHOT_SEVERITIES],
    *[f"ttf_days_{s}" for s in SNAPSHOT_SEVERITIES],
    *EXTRAS,
)


@dataclasses.dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))


def parse_days(value: Any, *, default: int = 30) -> int:
    if value in (None, ""):
        return default
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise ApplicationError(f"days must be a whole number from 1 to {MAX_DAYS}", code="invalid_days")
    return int(text)


def parse_date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ApplicationError(f"{name} must be a date (YYYY-MM-DD)", code=f"invalid_{name}") from None


def period_from(params: Any, *, today: dt.date | None = None) -> Period:
    """``days`` (ending today) or a custom ``from`` / ``to``."""
    today = today or timezone.localdate()
    if params.get("from") or params.get("to"):
        start = parse_date(params.get("from") or "", "from")
        end = min(parse_date(params.get("to") or today.isoformat(), "to"), today)
        if start > end or (end - start).days >= MAX_DAYS:
            raise ApplicationError(f"from must be on or before to, at most {MAX_DAYS} days apart", code="invalid_period")
        return Period(start, end)
    days = parse_days(params.get("days"))
    return Period(today - dt.timedelta(days=days - 1), today)


@dataclasses.dataclass(frozen=True)
class Scope:
    """Whose posture: the organisation (staff, no team named), a set of teams, or one team."""

    label: str
    team: Team | None
    team_ids: tuple[int, ...]
    organisation: bool

    def filter(self) -> Q:
        return Q(team__isnull=True) if self.organisation else Q(team_id__in=self.team_ids)


def scope_for(*, user: Any, team_slug: str = "") -> Scope:
    """The caller's scope; a team they cannot read answers 404, like a team that does not exist."""
    teams = visible_teams(user)
    if team_slug:
        team = teams.filter(slug=team_slug).first()
        if team is None:
            raise Http404("no such team")
        return Scope(team.name, team, (team.pk,), False)
    if sees_everything(user):
        return Scope("Organisation", None, (), True)
    return Scope("All your teams", None, tuple(teams.values_list("id", flat=True)), False)


def _rows(scope: Scope, period: Period) -> QuerySet[DailySnapshot]:
    return DailySnapshot.objects.filter(scope.filter(), date__gte=period.start, date__lte=period.end)


def series(*, scope: Scope, period: Period) -> list[dict[str, Any]]:
    """One point per snapshot day: every figure summed over the scope's rows of that day (one query)."""
    rows = _rows(scope, period).order_by().values("date").annotate(**{name: Sum(name) for name in SUMMED}).order_by("date")
    return [dict(row) for row in rows]


def open_by_severity(point: dict[str, Any]) -> dict[str, int]:
    return {s: int(point.get(f"open_{s}") or 0) for s in SNAPSHOT_SEVERITIES}


def overdue_total(point: dict[str, Any]) -> int:
    return sum(int(point.get(f"overdue_{s}") or 0) for s in SNAPSHOT_SEVERITIES)


def sla_compliance(points: list[dict[str, Any]]) -> float | None:
    """The share of findings fixed within their due date (of those fixed that had one); None when none were."""
    due = sum(int(p.get("fixed_with_due") or 0) for p in points)
    return round(sum(int(p.get("fixed_in_sla") or 0) for p in points) / due, 4) if due else None


def open_within_sla(point: dict[str, Any]) -> float | None:
    total = sum(open_by_severity(point).values())
    return round(1 - overdue_total(point) / total, 4) if total else None


def mttr_days(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """Mean days to fix per severity over ``points`` (None for a severity nothing was fixed of)."""
    result: dict[str, float | None] = {}
    for s in SNAPSHOT_SEVERITIES:
        n = sum(int(p.get(f"ttf_n_{s}") or 0) for p in points)
        result[s] = round(sum(float(p.get(f"ttf_days_{s}") or 0) for p in points) / n, 2) if n else None
    return result


def mttr_overall(points: list[dict[str, Any]]) -> float | None:
    n = sum(int(p.get(f"ttf_n_{s}") or 0) for p in points for s in SNAPSHOT_SEVERITIES)
    days = sum(float(p.get(f"ttf_days_{s}") or 0) for p in points for s in SNAPSHOT_SEVERITIES)
    return round(days / n, 2) if n else None


def open_now(*, scope: Scope) -> dict[str, int]:
    """Active findings by severity now, exactly as ``GET /api/v1/findings/`` counts them.

    The one read here that is not a snapshot: snapshots are taken hourly, and a pipeline that compares the
    posture with the findings list right after its report must see the same numbers.  On PostgreSQL the sum of
    the deltas its triggers keep per team and severity (a few hundred rows, never the findings table); elsewhere
    a count of the findings.  The organisation's count includes unowned findings, as staff's list does.
    """
    if connection.vendor == "postgresql":
        rows: QuerySet[Any] = ActiveFindingDelta.objects.all()
        column: Sum | Count = Sum("n")
    else:
        rows = Finding.objects.filter(status__in=ACTIVE_STATUSES)
        column = Count("*")
    if not scope.organisation:
        rows = rows.filter(team_id__in=scope.team_ids)
    counts = dict(rows.order_by().values_list("severity").annotate(total=column))
    return {severity: int(counts.get(severity) or 0) for severity in SNAPSHOT_SEVERITIES}


def summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    last = points[-1] if points else {}
    return {
        "open": open_by_severity(last),
        "overdue": overdue_total(last),
        "sla_compliance": sla_compliance(points),
        "mttr_days": mttr_days(points),
    }


def age_buckets(*, scope: Scope, day: dt.date | None) -> dict[str, int]:
    """Open findings by age on ``day`` (the scope's rows of that day, summed)."""
    totals: dict[str, int] = {}
    if day is None:
        return totals
    for ages in DailySnapshot.objects.filter(scope.filter(), date=day).values_list("open_by_age", flat=True):
        for name, n in (ages or {}).items():
            totals[name] = totals.get(name, 0) + int(n)
    return totals


def _first_seen(scope: Scope, period: Period) -> QuerySet[FirstSeenCount]:
    """The period's first-seen counts of the scope's teams (the organisation: every team's; unowned findings are on none)."""
    rows = FirstSeenCount.objects.filter(date__gte=period.start, date__lte=period.end).order_by()
    return rows if scope.organisation else rows.filter(team_id__in=scope.team_ids)


def first_seen_by_class(*, scope: Scope, period: Period) -> list[tuple[str, str, str, str, int]]:
    """(team slug, team name, class, stream, findings) first seen in the period: one aggregate over its rows, then the names.

    Grouped by the team's id, not its slug and name: hashing two text columns more per row made a year's
    aggregate half as slow again.
    """
    rows = list(_first_seen(scope, period).values_list("team_id", "klass", "stream").annotate(total=Sum("n")))
    names = {pk: (slug, name) for pk, slug, name in Team.objects.filter(pk__in={row[0] for row in rows}).values_list("id", "slug", "name")}
    return [(*names[team_id], klass, stream, int(total)) for team_id, klass, stream, total in rows if team_id in names]


def first_seen_by_day(*, scope: Scope, period: Period) -> list[tuple[dt.date, str, int]]:
    """(day, stream, findings first seen that day over every class), oldest first: one aggregate."""
    rows = _first_seen(scope, period).values_list("date", "stream").annotate(total=Sum("n")).order_by("date", "stream")
    return [(day, stream, int(total)) for day, stream, total in rows]
