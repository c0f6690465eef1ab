"""Retention: what grows with every report and alert is pruned to a configured age, in batches, idempotently.

- Raw payloads (``ReportPayload``, the bytes as posted) of reports that are done or failed, after
  ``VIGIL_RAW_RETENTION_DAYS``.  The report itself (its metadata, counts, outcomes and the finding events that name it)
  stays (an event report until its own retention, below); ``Report.payload_pruned_at`` records when, so the report
  page can say so.  A queued or processing report keeps
  its payload whatever its age: a worker still needs it; so does a report an admission repeat names (the flush
  stores its payload again, counting the repeats: services/admission_repeats.py).
- Finding occurrences (a tag, digest or workload a finding was seen in) not seen for ``VIGIL_OCCURRENCE_RETENTION_DAYS``,
  except each finding's most recent one: a finding always keeps where it was last seen.
- Event sightings (one row per alert or denial touching a finding, for nudges and posture) older than
  ``VIGIL_SIGHTING_RETENTION_DAYS``.
- Event-stream reports (one Falco alert or admission denial each: ``format`` in ``EVENT_REPORT_FORMATS``) that are
  done or failed and were received before ``VIGIL_EVENT_REPORT_RETENTION_DAYS``, with their payloads, unless something
  still names them (``KEPT_WHILE_NAMED``).  Scan reports (snapshots, Kyverno and Gatekeeper included) are never pruned.
- Event samples need no pruning: a runtime or admission finding keeps its newest few in ``details`` (finding_rows.SAMPLES_KEPT).

Each batch is its own short transaction, so pruning a backlog never holds locks for long nor one huge transaction;
running it again deletes nothing more.  docs/retention.md has the plan for the large tables at 100M rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from dashboard import metrics
from dashboard.models import (
    AdmissionRepeat,
    EventSighting,
    Finding,
    FindingEvent,
    FindingOccurrence,
    LifecycleScope,
    Report,
    ReportPayload,
    ReportStatus,
)
from dashboard.models.reports import EVENT_REPORT_FORMATS

log = logging.getLogger(__name__)

#: Rows deleted per transaction.
BATCH = 1000

#: What keeps an old event report while it names it, each a few rows per finding at most, never one per alert:
#: its sightings (they cascade from it; pruned by their own, shorter or equal, age first), the finding events it
#: caused (the audit trail says "by a falco report" with a link), and the findings and lifecycle scopes whose
#: last report it is (ownership reads that report's team).  Every other reference lets go (``on_delete=SET_NULL``,
#: pinned by a test): a gate decision asked with ``POST ?wait=`` keeps its decision, reasons and image and shows no
#: report; any reference added later goes the same way unless it is listed here.  A finding's first report stays: its
#: history starts there, and it costs one report per finding, not one per alert.  An admission repeat keeps the
#: report it repeats (it cascades, and the flush stores that report's payload again; a repeat lives a minute at most).
KEPT_WHILE_NAMED: tuple[tuple[type[Model], str], ...] = (
    (AdmissionRepeat, "report"),
    (EventSighting, "report"),
    (FindingEvent, "report"),
    (Finding, "first_report"),
    (Finding, "last_report"),
    (LifecycleScope, "last_report"),
)


@dataclasses.dataclass(frozen=True)
class Pruned:
    payloads: int = 0
    occurrences: int = 0
    sightings: int = 0
    reports: int = 0


def _cutoff(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _in_batches(candidates: QuerySet, *, batch: int) -> int:  # type: ignore[type-arg]
    """Delete ``candidates`` (an unevaluated queryset) ``batch`` rows per transaction; the number deleted."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(candidates.order_by("pk").values_list("pk", flat=True)[:batch])
            if ids:
                candidates.model.objects.filter(pk__in=ids).delete()
        total += len(ids)
        if len(ids) < batch:
            return total


def prune_payloads(*, now: dt.datetime, days: int, batch: int = BATCH) -> int:
    """Delete the raw payloads of finished reports received before ``days`` ago; mark those reports pruned.  Not of a
    report an admission repeat names: the flush stores that payload again, counting the repeats."""
    finished = [ReportStatus.DONE, ReportStatus.FAILED]
    repeated = AdmissionRepeat.objects.filter(report_id=OuterRef("report_id"))
    candidates = ReportPayload.objects.filter(~Exists(repeated), report__received_at__lt=_cutoff(now, days), report__status__in=finished)
    total = 0
    while True:
        with transaction.atomic():
            ids = list(candidates.order_by("report_id").values_list("report_id", flat=True)[:batch])
            if ids:
                ReportPayload.objects.filter(report_id__in=ids).delete()
                Report.objects.filter(pk__in=ids).update(payload_pruned_at=now)
        total += len(ids)
        if len(ids) < batch:
            return total


def prune_occurrences(*, now: dt.datetime, days: int, batch: int = BATCH) -> int:
    """Delete occurrences not seen since ``days`` ago, keeping each finding's most recently seen one."""
    newer = FindingOccurrence.objects.filter(finding_id=OuterRef("finding_id"), last_seen__gt=OuterRef("last_seen"))
    candidates = FindingOccurrence.objects.filter(Exists(newer), last_seen__lt=_cutoff(now, days))
    return _in_batches(candidates, batch=batch)


def prune_sightings(*, now: dt.datetime, days: int, batch: int = BATCH) -> int:
    return _in_batches(EventSighting.objects.filter(seen_at__lt=_cutoff(now, days)), batch=batch)


def _event_reports_past(cutoff: dt.datetime) -> QuerySet[Report]:
    """Finished event reports received before ``cutoff`` that nothing in ``KEPT_WHILE_NAMED`` names."""
    candidates = Report.objects.filter(
        format__in=EVENT_REPORT_FORMATS, received_at__lt=cutoff, status__in=[ReportStatus.DONE, ReportStatus.FAILED]
    )
    for model, field in KEPT_WHILE_NAMED:
        candidates = candidates.filter(~Exists(model._default_manager.filter(**{field: OuterRef("pk")})))
    return candidates


def _after(reports: QuerySet[Report], received_at: dt.datetime, pk: object) -> QuerySet[Report]:
    """``reports`` after ``(received_at, pk)`` in that order; the ``>=`` is what the index range starts from."""
    return reports.filter(Q(received_at__gt=received_at) | Q(received_at=received_at, pk__gt=pk), received_at__gte=received_at)


def prune_event_reports(*, now: dt.datetime, days: int, batch: int = BATCH) -> int:
    """Delete the event reports received before ``days`` ago that nothing still names, with their payloads.

    Walked oldest first from where the previous batch stopped, so the reports kept because they are named are
    read once a run, not once a batch.  A report a worker holds locked is skipped, not waited for.
    """
    candidates = _event_reports_past(_cutoff(now, days))
    total, after = 0, None
    while True:
        page = candidates if after is None else _after(candidates, *after)
        with transaction.atomic():
            rows = list(page.select_for_update(skip_locked=True).order_by("received_at", "pk").values_list("received_at", "pk")[:batch])
            if rows:
                Report.objects.filter(pk__in=[pk for _, pk in rows]).delete()
        total += len(rows)
        if len(rows) < batch:
            return total
        after = rows[-1]


def retention_prune(*, now: dt.datetime | None = None, batch: int = BATCH) -> Pruned:
    """Prune everything past its retention (the maintenance queue's beat task; no actor: a system job)."""
    moment = now or timezone.now()
    pruned = Pruned(
        payloads=prune_payloads(now=moment, days=settings.VIGIL_RAW_RETENTION_DAYS, batch=batch),
        occurrences=prune_occurrences(now=moment, days=settings.VIGIL_OCCURRENCE_RETENTION_DAYS, batch=batch),
        sightings=prune_sightings(now=moment, days=settings.VIGIL_SIGHTING_RETENTION_DAYS, batch=batch),
        # After the sightings: a report whose sightings just went is free to go in the same run.
        reports=prune_event_reports(now=moment, days=settings.VIGIL_EVENT_REPORT_RETENTION_DAYS, batch=batch),
    )
    for kind, count in dataclasses.asdict(pruned).items():
        metrics.RETENTION_PRUNED.labels(kind).inc(count)
    log.info(
        "retention pruned %s payloads, %s occurrences, %s sightings, %s event reports",
        pruned.payloads,
        pruned.occurrences,
        pruned.sightings,
        pruned.reports,
    )
    return pruned
