"""Processing stored reports in a worker: claim, recognise a repeat, parse, apply.

Processing is idempotent (at-least-once delivery): a report already done or failed is left alone,
and attempts are counted in the database so a poison report ends as failed.  Event reports (Falco
alerts, admission reviews) are applied in batches.  Receiving reports is reports.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from dashboard import metrics
from dashboard.db.advisory_locks import advisory_xact_lock
from dashboard.db.update_values import bulk_update_rows
from dashboard.ingest import apply, apply_events, publish, repeat
from dashboard.ingest.rights import FOREIGN_SCOPE, ForeignScopeError
from dashboard.models import Report, ReportPayload, ReportStatus
from dashboard.services import nudges, triage_rules
from dashboard.services.clusters import with_cluster
from dashboard.services.observed import observed_at_of
from scanners import registry
from scanners.base import ParseError, ParseResult, gc_paused
from scanners.loader import load_document

logger = logging.getLogger(__name__)

#: Errors that mean "the database is unavailable right now", not "this report is bad".
DATABASE_ERRORS = (OperationalError, InterfaceError)


def _claim(report_id: Any, now: dt.datetime) -> Report | None:
    """Count an attempt in its own transaction, so a worker that dies still used one."""
    if Report.objects.filter(pk=report_id, status__in=(ReportStatus.DONE, ReportStatus.FAILED)).exists():
        return None  # finished already (e.g. applied in another report's batch): one query, no lock, no transaction
    with transaction.atomic():
        report = Report.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.status in (ReportStatus.DONE, ReportStatus.FAILED):
            return None
        if report.attempts >= settings.VIGIL_MAX_ATTEMPTS:
            report.status = ReportStatus.FAILED
            report.error = report.error or f"gave up after {report.attempts} attempts (the worker stopped while processing)"
            report.finished_at = now
            report.save(update_fields=["status", "error", "finished_at"])
            metrics.report_failed(format_name=report.declared_format, stream=report.stream)
            return None
        report.attempts += 1
        report.status = ReportStatus.PROCESSING
        report.started_at = now
        report.save(update_fields=["attempts", "status", "started_at"])
        return report


def report_process(report_id: Any) -> Report | None:
    """Parse and apply a stored report.  Safe to call any number of times, even concurrently.

    A scan that repeats the last report of its scopes (timestamps aside) is recorded without parsing
    (repeat.py).  An event report (Falco alerts, admission reviews: they aggregate into findings and never close
    anything) takes other queued event reports of the same sender along, so one task applies up to
    EVENT_BATCH of them in one transaction; their own tasks then find them done.
    """
    with metrics.database_time(connection) as spent:
        report = _process(report_id)
    if report is not None:
        metrics.REPORT_DATABASE_SECONDS.labels(metrics.label(report.stream)).observe(spent.seconds)
    return report


def _process(report_id: Any) -> Report | None:
    report = _claim(report_id, timezone.now())
    if report is None:
        return None
    repeated = repeat.report_repeat(report=report)
    if repeated is not None:
        lag = (repeated.finished_at - repeated.received_at).total_seconds() if repeated.finished_at else 0.0
        metrics.report_done(format_name=repeated.format, stream=repeated.stream, lag_seconds=lag)
        return repeated  # the same scan as the last one of its scopes: recorded without parsing
    # The collector paused from the load to the commit: the parsed report and the rows built from it stay
    # alive throughout, and each full collection walked all of them again (50-110 ms of a 10,000-finding import).
    with gc_paused():
        try:
            parser, result = registry.parse_document(_load_payload(report.pk), report.declared_format or None)
        except ParseError as exc:
            return _fail(report.pk, str(exc))
        job = _Job(report.pk, parser.name, report.stream or parser.stream, with_cluster(result, report.cluster))
        if parser.name in apply.EVENT_FORMATS:
            return _process_events(report, job)
        return _apply_or_fail(job)


@dataclasses.dataclass
class _Job:
    """A claimed and parsed report, ready to apply."""

    report_id: Any
    source: str
    stream: str
    result: ParseResult


def _apply_or_fail(job: _Job) -> Report:
    try:
        return _apply(job)
    except DATABASE_ERRORS:
        raise  # transient (e.g. PostgreSQL restarting): the task retries; attempts are counted
    except ForeignScopeError as exc:  # rolled back: the report was about other teams' findings only
        return _fail(job.report_id, exc.message)
    except Exception as exc:
        logger.exception("report %s could not be applied", job.report_id)
        return _fail(job.report_id, f"internal error while applying the report ({type(exc).__name__}); the report is kept")


def _load_payload(report_id: Any) -> Any:
    """The stored report as a document.  The raw bytes (and the driver's buffer) are released before
    the document is normalised, which keeps a 50 MB report's peak memory down."""
    stored, encoding = ReportPayload.objects.values_list("data", "encoding").get(report_id=report_id)
    data = ReportPayload.unpack(stored, encoding)
    del stored
    return load_document(data)


def _apply(job: _Job) -> Report:
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=job.report_id)
        if locked.status != ReportStatus.PROCESSING:
            return locked  # a concurrent delivery finished it first
        if job.source in apply.EVENT_FORMATS:
            _serialise_event_applies()
        touched = _apply_locked(locked, job)
    nudges.nudges_after_reports(applied=[(locked.pk, touched)])  # event sightings, urgent classes (never raises)
    return locked


def _apply_locked(locked: Report, job: _Job) -> list[int]:
    """Apply one report whose row the caller has locked, inside the caller's transaction; returns the ids of
    the findings it named."""
    if job.source in apply.EVENT_FORMATS:  # a lone event report is a batch of one: events are applied one way only
        (outcome,) = apply_events.apply_event_reports([apply_events.EventReport(locked, job.source, job.stream, job.result)])
    else:
        outcome = apply.apply_report(report=locked, source=job.source, stream=job.stream, result=job.result, now=locked.observed_at)
    triage_rules.after_ingest(
        new_ids=outcome.new_ids, reopened_ids=outcome.reopened_ids, changed_ids=outcome.changed_ids, now=locked.observed_at
    )
    _finish(locked, job, outcome)
    locked.save()
    return outcome.finding_ids


#: What applying a report writes on its row (_finish).
_FINISHED_FIELDS = [
    "image",
    "image_tag",
    "image_digest",
    "format",
    "stream",
    "counts",
    "findings_total",
    "held_closures",
    "unchanged_ids",
    "scopes",
    "status",
    "error",
    "finished_at",
    "observed_at",
]


def _finish(report: Report, job: _Job, outcome: apply.IngestOutcome) -> None:
    """Record on the report row (not saved) that it was applied, with its counts."""
    report.format = job.source
    report.stream = job.stream
    report.counts = outcome.counts
    report.findings_total = outcome.findings_total
    report.held_closures = outcome.held_closures
    report.unchanged_ids = outcome.unchanged_ids
    report.scopes = outcome.scopes
    report.status = ReportStatus.FAILED if outcome.refused else ReportStatus.DONE
    report.error = FOREIGN_SCOPE if outcome.refused else ""
    report.finished_at = timezone.now()
    report.observed_at = observed_at_of(report=report, result=job.result)
    lag = (report.finished_at - report.received_at).total_seconds()
    transaction.on_commit(lambda: metrics.report_done(format_name=job.source, stream=job.stream, lag_seconds=lag))  # not if rolled back


# --- event reports in batches ----------------------------------------------------------------------

#: Most event reports one task applies in one transaction (the one it was given included).
EVENT_BATCH = 200
#: Only event reports up to this size are taken along (a Falco alert is about 2 kB).
EVENT_BATCH_REPORT_BYTES = 256 * 1024
#: PostgreSQL advisory lock key under which event reports are applied (``pg_advisory_xact_lock``).
EVENT_APPLY_LOCK = 0x5649474C_45564E54  # "VIGLEVNT"


def _serialise_event_applies() -> None:
    """Apply event reports one transaction at a time (the lock is released at commit or rollback).

    Event applies contend on the same few scopes, images and findings anyway, so one advisory lock
    serialises them rather than every row lock they take having to come in one global order (a
    concurrency test found a deadlock between two batches without it).
    """
    advisory_xact_lock(EVENT_APPLY_LOCK)


#: Batches one events task claims for its sender before it leaves the rest to a new task (others' turn).
EVENT_DRAIN_ROUNDS = 25
#: A pending mark (``events_pending_key``) expires after this: a task lost with its mark holds nothing up for longer.
EVENT_PENDING_SECONDS = 60
#: What ``_claim_events`` takes along: a report's sender.
_SENDER_FIELDS = ("token_id", "submitted_by_id", "team_id", "declared_format", "image_ref", "stream")


def takes_along(*, events: bool, size: int) -> bool:
    """Is a stored report one an events task of its sender claims without a task of its own (``_claim_events``)?"""
    return events and size <= EVENT_BATCH_REPORT_BYTES


def events_pending_key(report: Report) -> str:
    """The pending mark of the report's sender: set while an events task for the sender is queued and not started."""
    sender = "\x1f".join(str(getattr(report, field) or "") for field in _SENDER_FIELDS)
    database = settings.DATABASES["default"]["NAME"]
    queue = publish.task_queue(publish.TASKS.PROCESS_EVENTS)
    return f"vigil:events-pending:{database}:{queue}:{hashlib.sha256(sender.encode()).hexdigest()[:32]}"


def events_process(report_id: Any, received_stream: str | None = None) -> Report | None:
    """The events queue's task: clear the sender's pending mark, then apply the report with every queued event
    report of its sender, a batch at a time, until none is left.

    Reports stored after the mark was cleared set it again and publish a task of their own; reports stored
    before are found here.  So one task is published per burst of alerts, not one per alert, and none is missed.
    ``received_stream``: the report's stream as it was received (applying it records the stream it was applied
    as, and the report may have been applied in an earlier task's batch already); else the row's.
    """
    template = Report.objects.filter(pk=report_id).first()
    if template is None:
        return None
    if received_stream is not None:
        template.stream = received_stream
    publish.pending_clear(events_pending_key(template))
    report = report_process(report_id)
    rounds = 0
    with metrics.database_time(connection) as spent:
        while rounds < EVENT_DRAIN_ROUNDS and _drain_round(template):
            rounds += 1
    metrics.REPORT_DATABASE_SECONDS.labels(metrics.label(template.stream)).observe(spent.seconds)
    if rounds == EVENT_DRAIN_ROUNDS:
        _hand_over(template)
    return report


def _drain_round(template: Report) -> bool:
    """Claim and apply one batch of the sender's queued reports; False when there was none."""
    claimed = _claim_events(template, timezone.now())
    if not claimed:
        return False
    jobs = _parsed(claimed)
    if jobs:
        _apply_jobs(jobs)
    return True


def _hand_over(template: Report) -> None:
    """The sender kept sending: a new task (queued behind other senders' tasks) goes on with its reports."""
    oldest = (
        Report.objects.filter(status=ReportStatus.QUEUED, **{field: getattr(template, field) for field in _SENDER_FIELDS})
        .order_by("received_at")
        .values_list("pk", flat=True)
        .first()
    )
    if oldest is not None:
        key = events_pending_key(template)
        args = [str(oldest), template.stream]
        publish.publish_unless_pending(publish.TASKS.PROCESS_EVENTS, args, key=key, seconds=EVENT_PENDING_SECONDS)


def _parsed(claimed: list[tuple[Report, Any]]) -> list[_Job]:
    """Claimed reports parsed into jobs; one that does not parse fails alone."""
    jobs = []
    for report, document in claimed:
        try:
            parser, result = registry.parse_document(document, report.declared_format or None)
        except ParseError as exc:
            _fail(report.pk, str(exc))
            continue
        jobs.append(_Job(report.pk, parser.name, report.stream or parser.stream, with_cluster(result, report.cluster)))
    return jobs


def _process_events(leader: Report, first: _Job) -> Report:
    """Apply the leader and the queued event reports claimed with it, in one transaction.

    The reports are applied as one, in order of arrival (``apply_events``: the end state of applying them one
    by one; every report keeps its own counts).  A report that does not parse fails alone; if applying the
    batch fails, it is rolled back and its reports are applied one by one, so one bad report fails alone.
    """
    jobs = [first, *_parsed(_claim_events(leader, timezone.now()))]
    if len(jobs) == 1:
        return _apply_or_fail(first)
    applied = _apply_jobs(jobs)
    return applied.get(leader.pk) or Report.objects.get(pk=leader.pk)


def _apply_jobs(jobs: list[_Job]) -> dict[Any, Report]:
    """Apply event reports as one batch (falling back to one by one), and claimed reports that are no events alone."""
    events = [job for job in jobs if job.source in apply.EVENT_FORMATS]
    others = [job for job in jobs if job.source not in apply.EVENT_FORMATS]  # undeclared, and not events after all
    try:
        applied = _apply_batch(events)
    except DATABASE_ERRORS:
        raise  # transient: the leader's task retries; the others are still processing and their own tasks apply them
    except Exception:
        logger.exception("a batch of %d event reports could not be applied together: applying them one by one", len(events))
        applied = {job.report_id: _apply_or_fail(job) for job in events}
    for job in others:
        applied[job.report_id] = _apply_or_fail(job)
    return applied


def _claim_events(leader: Report, now: dt.datetime) -> list[tuple[Report, Any]]:
    """Claim queued reports sent like the leader (same sender, team, declared format, image and stream), counting
    an attempt for each in a committed transaction (a worker that dies still used it), with their documents.
    One sender per batch: what a report may change depends on its sender (rights.py).

    SKIP LOCKED: a report another worker is claiming right now is left to it.
    """
    with transaction.atomic():
        claimed = list(
            Report.objects.select_for_update(skip_locked=True)
            .filter(
                status=ReportStatus.QUEUED,
                token=leader.token_id,
                submitted_by=leader.submitted_by_id,
                team=leader.team_id,
                declared_format=leader.declared_format,
                image_ref=leader.image_ref,
                stream=leader.stream,
                size_bytes__lte=EVENT_BATCH_REPORT_BYTES,
            )
            .exclude(pk=leader.pk)
            .order_by("received_at")[: EVENT_BATCH - 1]
        )
        if not claimed:
            return []
        Report.objects.filter(pk__in=[r.pk for r in claimed]).update(
            status=ReportStatus.PROCESSING, attempts=F("attempts") + 1, started_at=now
        )
    payloads = {
        pk: (data, encoding)
        for pk, data, encoding in ReportPayload.objects.filter(report_id__in=[r.pk for r in claimed]).values_list(
            "report_id", "data", "encoding"
        )
    }
    out = []
    for report in claimed:
        report.status, report.attempts, report.started_at = ReportStatus.PROCESSING, report.attempts + 1, now
        try:
            document = load_document(ReportPayload.unpack(*payloads.pop(report.pk)))
        except ParseError as exc:
            _fail(report.pk, str(exc))
            continue
        out.append((report, document))
    return out


def _apply_batch(jobs: list[_Job]) -> dict[Any, Report]:
    """Apply event reports one after another in ONE transaction; reports finished meanwhile are skipped."""
    with transaction.atomic():
        # All rows are locked up front (SKIP LOCKED): a report another delivery is applying right now is left to it,
        # and this transaction never waits for a report row while it holds finding and scope locks.
        locked = {
            report.pk: report
            for report in Report.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("team")  # the team comes with the rows, not in a query per report
            .filter(pk__in=[job.report_id for job in jobs], status=ReportStatus.PROCESSING)
        }
        ordered = sorted((job for job in jobs if job.report_id in locked), key=lambda job: locked[job.report_id].received_at)
        if not ordered:
            return {}
        _serialise_event_applies()
        reports = [locked[job.report_id] for job in ordered]
        outcomes = apply_events.apply_event_reports(
            [apply_events.EventReport(report, job.source, job.stream, job.result) for report, job in zip(reports, ordered, strict=True)],
        )
        triage_rules.after_ingest(
            new_ids=[pk for outcome in outcomes for pk in outcome.new_ids],
            reopened_ids=[pk for outcome in outcomes for pk in outcome.reopened_ids],
            changed_ids=[pk for outcome in outcomes for pk in outcome.changed_ids],
            now=reports[-1].observed_at,
        )
        for report, job, outcome in zip(reports, ordered, outcomes, strict=True):
            _finish(report, job, outcome)
        bulk_update_rows(Report, reports, _FINISHED_FIELDS)
    # Once for the batch; never raises.
    nudges.nudges_after_reports(applied=[(report.pk, outcome.finding_ids) for report, outcome in zip(reports, outcomes, strict=True)])
    return {report.pk: report for report in reports}


def _fail(report_id: Any, message: str) -> Report:
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report_id)
        if report.status != ReportStatus.DONE:
            report.status = ReportStatus.FAILED
            report.error = message[:2000]
            report.finished_at = timezone.now()
            report.save(update_fields=["status", "error", "finished_at"])
            failed_as = (report.format or report.declared_format, report.stream)
            transaction.on_commit(lambda: metrics.report_failed(format_name=failed_as[0], stream=failed_as[1]))
    return report
