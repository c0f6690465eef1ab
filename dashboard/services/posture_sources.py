"""What a posture snapshot is made from, read the same way by the daily snapshot and by the backfill.

Every function takes a day range (inclusive, calendar days in TIME_ZONE) and answers figures keyed by
(team id or None, day index from the range's first day).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, F, JSONField, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from dashboard.models import EventSighting, Finding, FindingEvent, Image, Status, Stream, Team
from dashboard.selectors.finding_classes import FACT_FIELDS, FindingFacts, classes_for
from dashboard.selectors.stale_images import STALE_DAYS, scan_reports
from dashboard.services import risk
from dashboard.services.posture_replay import CREATED, Event, History, Replay

CHUNK = 5000
DayKey = tuple[int | None, int]


def day_start(day: dt.date) -> dt.datetime:
    """The first moment of ``day`` in TIME_ZONE (aware)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone())


def day_of(moment: dt.datetime) -> dt.date:
    """The calendar day of ``moment`` in TIME_ZONE (called for every event of a backfill: no more than a conversion)."""
    return moment.astimezone(timezone.get_default_timezone()).date()


def new_replay(*, start: dt.date, end: dt.date) -> Replay:
    teams = {team.pk: risk.sla_days_for(team.sla_days) for team in Team.objects.only("id", "sla_days")}
    slugs = dict(Team.objects.values_list("slug", "id"))
    defaults = risk.sla_days_for(None)

    def due_for(team: int | None, severity: str, start_day: dt.date) -> dt.date | None:
        return risk.due_date(severity=severity, start=start_day, sla_days=teams.get(team, defaults) if team else defaults)

    return Replay(
        start=start,
        end=end,
        day_of=day_of,
        due_for=due_for,
        team_of_slug=lambda slug: slugs.get(slug),
        restart_sla_on_reopen=settings.VIGIL_SLA_RESTART_ON_REOPEN,
    )


_HISTORY_EVENTS = Q(to_status__gt="") | Q(type__in=[FindingEvent.Type.SEVERITY, FindingEvent.Type.OWNER])
_FINDING_FIELDS = ("id", "team_id", "severity", "status", "first_seen", "fixed_at", "due_date", "kev_due_date")


def histories(findings: Any) -> Iterator[History]:
    """Each finding of ``findings`` (a queryset) with its status, severity and owner events, oldest first.

    Two ordered streams merged by finding id, so memory holds one finding's events at a time.
    """
    rows = findings.order_by("id").values_list(*_FINDING_FIELDS).iterator(chunk_size=CHUNK)
    events = (
        FindingEvent.objects.filter(_HISTORY_EVENTS, finding__in=findings.values("id"))
        .annotate(
            why=Case(When(type=FindingEvent.Type.OWNER, then=F("reason")), default=Value(""), output_field=CharField()),
            change=Case(When(type=FindingEvent.Type.SEVERITY, then=F("data")), default=None, output_field=JSONField()),
        )
        .order_by("finding_id", "created_at", "id")
        .values_list("finding_id", "created_at", "type", "to_status", "change", "why")
        .iterator(chunk_size=CHUNK * 4)
    )
    pending = next(events, None)
    for pk, team_id, severity, status, first_seen, fixed_at, due, kev_due in rows:
        own: list[Event] = []
        while pending is not None and pending[0] <= pk:
            if pending[0] == pk:
                own.append(Event(pending[1], pending[2], pending[3], pending[4] or {}, pending[5] or ""))
            pending = next(events, None)
        # A finding's creation is not an event: it opened when first seen.
        created = Event(first_seen, CREATED, Status.OPEN, {}, "")
        if not own and status != Status.OPEN:
            # Rows written without events (imports of old data): fixed when fixed.
            own = [Event(fixed_at or first_seen, FindingEvent.Type.STATUS, status, {}, "")]
        yield History(team_id, severity, status, first_seen, due, kev_due, [created, *own])


def event_counts(*, start: dt.date, end: dt.date) -> dict[DayKey, Counter[str]]:
    """Admission denials and runtime alerts (event sightings, each counting its report's occurrences) per team and day."""
    tz = timezone.get_default_timezone()
    rows = (
        EventSighting.objects.filter(
            seen_at__gte=day_start(start),
            seen_at__lt=day_start(end + dt.timedelta(days=1)),
            finding__stream__in=[Stream.ADMISSION, Stream.RUNTIME],
        )
        .annotate(day=TruncDate("seen_at", tzinfo=tz))
        .values_list("team_id", "day", "finding__stream")
        # A report may stand for many identical events (the webhook's counted repeats: Report.occurrences).
        .annotate(n=Sum("report__occurrences"))
    )
    counts: dict[DayKey, Counter[str]] = defaultdict(Counter)
    for team_id, day, stream, n in rows:
        counts[(team_id, (day - start).days)][stream] += n
    return counts


def stale_images(*, start: dt.date, end: dt.date) -> dict[DayKey, int]:
    """Images whose last scan is STALE_DAYS or more before the day, per team (selectors/stale_images.py says what
    "scanned" and "stale" mean)."""
    days = (end - start).days + 1
    scans: dict[int, set[dt.date]] = defaultdict(set)
    reports = scan_reports().filter(observed_at__lt=day_start(end + dt.timedelta(days=1))).values_list("image_id", "observed_at")
    for image_id, observed in reports.iterator(chunk_size=CHUNK):
        scans[image_id].add(day_of(observed))
    teams = dict(Image.objects.filter(pk__in=list(scans)).values_list("id", "team_id"))
    diff: dict[int | None, list[int]] = defaultdict(lambda: [0] * (days + 1))
    for image_id, seen in scans.items():
        ordered = sorted(seen)
        for index, scanned in enumerate(ordered):
            until = ordered[index + 1] if index + 1 < len(ordered) else end + dt.timedelta(days=1)
            low, high = max((scanned - start).days + STALE_DAYS, 0), min((until - start).days, days)
            if low < high:
                diff[teams.get(image_id)][low] += 1
                diff[teams.get(image_id)][high] -= 1
    figures: dict[DayKey, int] = {}
    for team_id, steps in diff.items():
        running = 0
        for index in range(days):
            running += steps[index]
            if running:
                figures[(team_id, index)] = running
    return figures


_FACTS = tuple(name for name in FACT_FIELDS if name != "details")


def vigil_classes(values: dict[str, Any], memo: dict[tuple[Any, ...], list[str]]) -> list[str]:
    """Vigil's classes of a finding (``other`` when none), memoised on the facts they depend on."""
    key = tuple(tuple(v) if isinstance(v, list) else v for v in (values[name] for name in (*_FACTS, "details_class", "details_purl")))
    found = memo.get(key)
    if found is None:
        values = {**values, "details": {"class": values["details_class"] or "", "purl": values["details_purl"] or ""}}
        classes = classes_for(FindingFacts.from_values(values))
        found = memo[key] = sorted(k.removeprefix("vigil:") for k in classes if k.startswith("vigil:")) or ["other"]
    return found


def first_streams(*, start: dt.date, end: dt.date) -> dict[DayKey, dict[str, Counter[str]]]:
    """Findings first seen on each day, per team, finding class (Vigil's classes) and the stream that caught them."""
    rows = (
        Finding.objects.filter(first_seen__gte=day_start(start), first_seen__lt=day_start(end + dt.timedelta(days=1)))
        .annotate(details_class=KeyTextTransform("class", "details"), details_purl=KeyTextTransform("purl", "details"))
        .values("team_id", "stream", "first_seen", "details_class", "details_purl", *_FACTS)
    )
    figures: dict[DayKey, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    memo: dict[tuple[Any, ...], list[str]] = {}
    for row in rows.iterator(chunk_size=CHUNK):
        key = (row["team_id"], (day_of(row["first_seen"]) - start).days)
        for klass in vigil_classes(row, memo):
            figures[key][klass][row["stream"]] += 1
    return figures
