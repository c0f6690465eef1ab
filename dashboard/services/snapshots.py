"""Daily posture snapshots per team and for the organisation: taken live each hour, rebuilt from events by backfill.

The live snapshot counts today's open, overdue and aged findings from the findings as they are now (three
aggregates) and what happened today from today's events; the backfill replays every finding's events
(services/posture_replay.py).  Both write the same rows, and with them each team's first-seen counts per class
and stream (FirstSeenCount, what the shift-left page sums); a test holds them equal.  Writing a day again
replaces it (delete and insert in one transaction), so both are idempotent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Case, CharField, Count, Q, QuerySet, Value, When
from django.utils import timezone

from dashboard.db.copy_rows import insert_rows
from dashboard.errors import ApplicationError
from dashboard.models import ACTIVE_STATUSES, SNAPSHOT_SEVERITIES, DailySnapshot, Finding, FindingEvent, FirstSeenCount, Team
from dashboard.models.posture import AGE_BUCKETS, TTF_BUCKETS
from dashboard.services import posture_sources as sources
from dashboard.services.posture_replay import Flows, Replay, ttf_histogram, ttf_summary

ORG: None = None
#: Longest backfill, in days.
MAX_BACKFILL_DAYS = 3650


@dataclasses.dataclass
class Stock:
    open: Counter[str] = dataclasses.field(default_factory=Counter)
    overdue: Counter[str] = dataclasses.field(default_factory=Counter)
    age: Counter[str] = dataclasses.field(default_factory=Counter)


@dataclasses.dataclass
class Inputs:
    """Everything a range of snapshots is made from."""

    start: dt.date
    days: int
    stock: dict[tuple[int | None, int], Stock]
    flows: dict[tuple[int | None, int], Flows]
    events: dict[tuple[int | None, int], Counter[str]]
    stale: dict[tuple[int | None, int], int]
    first: dict[tuple[int | None, int], dict[str, Counter[str]]]


def _live_stock(day: dt.date) -> dict[tuple[int | None, int], Stock]:
    stock: dict[tuple[int | None, int], Stock] = {}
    active = Finding.objects.filter(status__in=ACTIVE_STATUSES).order_by()
    for team_id, severity, n in active.values_list("team_id", "severity").annotate(n=Count("*")):  # from the index alone
        stock.setdefault((team_id, 0), Stock()).open[severity] += n
    for team_id, severity, n in active.filter(due_date__lt=day).values_list("team_id", "severity").annotate(n=Count("id")):
        stock.setdefault((team_id, 0), Stock()).overdue[severity] += n
    whens = [
        When(first_seen__gte=sources.day_start(day - dt.timedelta(days=lowest if highest is None else highest)), then=Value(name))
        for name, lowest, highest in AGE_BUCKETS
        if highest is not None
    ]
    bucket = Case(*whens, default=Value(AGE_BUCKETS[-1][0]), output_field=CharField())
    for team_id, name, n in active.annotate(bucket=bucket).values_list("team_id", "bucket").annotate(n=Count("id")):
        stock.setdefault((team_id, 0), Stock()).age[name] += n
    return stock


def _replayed_stock(replay: Replay) -> dict[tuple[int | None, int], Stock]:
    stock: dict[tuple[int | None, int], Stock] = {}
    for team, family, name in list(replay.stock):
        for index, value in enumerate(replay.daily(team, family, name)):
            if value:
                getattr(stock.setdefault((team, index), Stock()), family)[name] += value
    return stock


def _inputs(*, start: dt.date, end: dt.date, stock: dict[tuple[int | None, int], Stock], replay: Replay) -> Inputs:
    return Inputs(
        start=start,
        days=(end - start).days + 1,
        stock=stock,
        flows=replay.flows,
        events=sources.event_counts(start=start, end=end),
        stale=sources.stale_images(start=start, end=end),
        first=sources.first_streams(start=start, end=end),
    )


def _merge_flows(flows: list[Flows]) -> Flows:
    merged = Flows()
    for item in flows:
        for name in ("new", "fixed", "reopened", "risk_accepted", "false_positive", "fixed_with_due", "fixed_in_sla"):
            setattr(merged, name, getattr(merged, name) + getattr(item, name))
        for severity, values in item.ttf.items():
            merged.ttf[severity].extend(values)
    return merged


def _row(*, team_id: int | None, day: dt.date, now: dt.datetime, stock: Stock, flows: Flows, cumulative: list[int]) -> dict[str, Any]:
    counts, sums, medians = ttf_summary(flows.ttf)
    fields: dict[str, Any] = {f"open_{s}": stock.open.get(s, 0) for s in SNAPSHOT_SEVERITIES}
    fields |= {f"overdue_{s}": stock.overdue.get(s, 0) for s in SNAPSHOT_SEVERITIES}
    fields |= {f"ttf_n_{s}": counts.get(s, 0) for s in SNAPSHOT_SEVERITIES}
    fields |= {f"ttf_days_{s}": round(sums.get(s, 0.0), 4) for s in SNAPSHOT_SEVERITIES}
    return {
        "team_id": team_id,
        "date": day,
        "taken_at": now,
        "new": flows.new,
        "fixed": flows.fixed,
        "reopened": flows.reopened,
        "risk_accepted": flows.risk_accepted,
        "false_positive": flows.false_positive,
        "fixed_with_due": flows.fixed_with_due,
        "fixed_in_sla": flows.fixed_in_sla,
        "ttf_median": medians,
        "ttf_cumulative": cumulative,
        "open_by_age": {name: stock.age.get(name, 0) for name, _, _ in AGE_BUCKETS},
        **fields,
    }


def _cumulative_base(*, team_ids: list[int | None], before: dt.date) -> dict[int | None, list[int]]:
    empty = [0] * (len(TTF_BUCKETS) + 1)
    base: dict[int | None, list[int]] = {team: list(empty) for team in team_ids}
    for team_id, values in DailySnapshot.objects.filter(date=before).values_list("team_id", "ttf_cumulative"):
        if team_id in base and isinstance(values, list) and len(values) == len(empty):
            base[team_id] = [int(v) for v in values]
    return base


def _build(inputs: Inputs, *, team_ids: list[int], with_org: bool, now: dt.datetime) -> list[dict[str, Any]]:
    keys: list[int | None] = [*team_ids, ORG] if with_org else list(team_ids)
    running = _cumulative_base(team_ids=keys, before=inputs.start - dt.timedelta(days=1))
    all_teams: set[int | None] = {key[0] for source in (inputs.stock, inputs.flows, inputs.events, inputs.stale) for key in source}
    rows = []
    for index in range(inputs.days):
        day = inputs.start + dt.timedelta(days=index)
        for team_id in keys:
            members: set[int | None] = all_teams | {None} if team_id is ORG else {team_id}
            stock = Stock()
            for member in members:
                part = inputs.stock.get((member, index))
                if part is not None:
                    stock.open.update(part.open)
                    stock.overdue.update(part.overdue)
                    stock.age.update(part.age)
            flows = _merge_flows([inputs.flows[(m, index)] for m in members if (m, index) in inputs.flows])
            running[team_id] = [a + b for a, b in zip(running[team_id], ttf_histogram(flows.ttf), strict=True)]
            row = _row(team_id=team_id, day=day, now=now, stock=stock, flows=flows, cumulative=list(running[team_id]))
            _extras(row, inputs, index=index, members=members, unowned=team_id is ORG)
            rows.append(row)
    return rows


def _extras(row: dict[str, Any], inputs: Inputs, *, index: int, members: set[int | None], unowned: bool) -> None:
    events: Counter[str] = Counter()
    stale = 0
    for member in members:
        events.update(inputs.events.get((member, index), Counter()))
        stale += inputs.stale.get((member, index), 0)
    row["admission_denials"], row["runtime_alerts"] = events.get("admission", 0), events.get("runtime", 0)
    row["stale_images"] = stale
    part = inputs.stock.get((None, index)) if unowned else None
    row["unowned"] = sum(part.open.values()) if part else 0


def _first_seen_rows(inputs: Inputs, *, team_ids: list[int]) -> list[dict[str, Any]]:
    """FirstSeenCount rows of ``team_ids``: one per day, class and stream that caught something first seen that day."""
    wanted = set(team_ids)
    return [
        {"team_id": team_id, "date": inputs.start + dt.timedelta(days=index), "klass": klass, "stream": stream, "n": n}
        for (team_id, index), classes in inputs.first.items()
        if team_id in wanted
        for klass, counts in sorted(classes.items())
        for stream, n in sorted(counts.items())
        if n
    ]


@transaction.atomic
def _write(
    rows: list[dict[str, Any]], first_seen: list[dict[str, Any]], *, start: dt.date, end: dt.date, team_ids: list[int], with_org: bool
) -> None:
    """Replaces the range's snapshots of ``team_ids`` (and the organisation's, ``with_org``) and their first-seen counts."""
    scope = Q(team_id__in=team_ids) | Q(team__isnull=True) if with_org else Q(team_id__in=team_ids)
    DailySnapshot.objects.filter(scope, date__gte=start, date__lte=end).delete()
    insert_rows(DailySnapshot, rows)
    FirstSeenCount.objects.filter(team_id__in=team_ids, date__gte=start, date__lte=end).delete()
    insert_rows(FirstSeenCount, first_seen)


def _findings_touched(day: dt.date) -> QuerySet[Finding]:
    since, until = sources.day_start(day), sources.day_start(day + dt.timedelta(days=1))
    touched = FindingEvent.objects.filter(created_at__gte=since, created_at__lt=until).values("finding_id")
    return Finding.objects.filter(Q(pk__in=touched) | Q(first_seen__gte=since, first_seen__lt=until))


def snapshot_take(*, now: dt.datetime | None = None) -> int:
    """Today's snapshot of every team and of the organisation, as things are now (replacing today's rows).

    Yesterday is rebuilt from events first if its snapshot was taken before its day ended, so every past
    day ends up final.  Returns the number of rows written.
    """
    now = now or timezone.now()
    today = sources.day_of(now)
    yesterday = today - dt.timedelta(days=1)
    last = DailySnapshot.objects.filter(team__isnull=True, date=yesterday).values_list("taken_at", flat=True).first()
    if last is not None and last < sources.day_start(today):
        snapshots_backfill(days=1, end=yesterday, now=now)
    replay = sources.new_replay(start=today, end=today)
    replay.add_all(sources.histories(_findings_touched(today)))
    team_ids = list(Team.objects.order_by("id").values_list("id", flat=True))
    inputs = _inputs(start=today, end=today, stock=_live_stock(today), replay=replay)
    rows = _build(inputs, team_ids=team_ids, with_org=True, now=now)
    _write(rows, _first_seen_rows(inputs, team_ids=team_ids), start=today, end=today, team_ids=team_ids, with_org=True)
    return len(rows)


def snapshots_backfill(*, days: int, team_slug: str = "", end: dt.date | None = None, now: dt.datetime | None = None) -> int:
    """Rebuild the snapshots of the last ``days`` days (ending today, or ``end``) from the findings' events.

    With ``team_slug``, only that team's rows (the organisation's rows are left as they are).  Idempotent.
    """
    if not 1 <= days <= MAX_BACKFILL_DAYS:
        raise ApplicationError(f"days must be between 1 and {MAX_BACKFILL_DAYS}", code="invalid_days")
    now = now or timezone.now()
    end = min(end or sources.day_of(now), sources.day_of(now))
    start = end - dt.timedelta(days=days - 1)
    teams = Team.objects.order_by("id")
    findings = Finding.objects.all()
    if team_slug:
        team = teams.filter(slug=team_slug).first()
        if team is None:
            raise ApplicationError(f"no team {team_slug!r}", code="unknown_team", status=404)
        teams, findings = teams.filter(pk=team.pk), findings.filter(team=team)
    replay = sources.new_replay(start=start, end=end)
    replay.add_all(sources.histories(findings))
    team_ids = list(teams.values_list("id", flat=True))
    inputs = _inputs(start=start, end=end, stock=_replayed_stock(replay), replay=replay)
    rows = _build(inputs, team_ids=team_ids, with_org=not team_slug, now=now)
    _write(rows, _first_seen_rows(inputs, team_ids=team_ids), start=start, end=end, team_ids=team_ids, with_org=not team_slug)
    return len(rows)
