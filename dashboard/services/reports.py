"""Receiving and processing reports: store first, answer at once, process in a worker.

The raw report and its record are committed before the API answers; the
Celery task gets the report id only, after commit.  Processing is idempotent
(at-least-once delivery): a report already done or failed is left alone, and
attempts are counted in the database so a poison report ends as failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.sql import InsertQuery
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, Report, ReportPayload, ReportStatus, Stream, Team
from dashboard.selectors.access import can_triage
from dashboard.services import ingest, nudges, triage_rules
from scanners import registry
from scanners.base import ImageRef, ParseError, ParseResult
from scanners.loader import load_document

logger = logging.getLogger(__name__)

#: The Celery task name (dashboard/tasks.py); names are stable so queued messages survive refactors.
PROCESS_TASK = "vigil.reports.process"
#: Errors that mean "the database is unavailable right now", not "this report is bad".
DATABASE_ERRORS = (OperationalError, InterfaceError)


def _validate_options(*, format_name: str, image: str, stream: str) -> None:
    if format_name and format_name not in registry.format_names():
        raise ApplicationError(f"unknown format {format_name!r}; use one of: {', '.join(registry.format_names())}", code="unknown_format")
    if image and ImageRef.parse(image) is None:
        raise ApplicationError(f"image {image[:200]!r} is not an image reference like registry/repository:tag", code="invalid_image")
    if stream and stream not in Stream.values:
        raise ApplicationError(f"unknown stream {stream!r}; use one of: {', '.join(Stream.values)}", code="invalid_stream")


def resolve_team(*, token: ApiToken | None, team_slug: str, user: User | None = None) -> Team | None:
    """The team a report is for: the token's team; an explicit team must be one the token covers
    (its own, or an integration token's extra teams) or, for a person, one they may triage."""
    if token is not None:
        if not team_slug or team_slug == token.team.slug:
            return token.team
        named = Team.objects.filter(slug=team_slug, pk__in=token.team_ids()).first()
        if named is None:
            raise ApplicationError(f"this token may not post reports for team {team_slug!r}", code="forbidden_team", status=403)
        return named
    if not team_slug:
        return None
    team = Team.objects.filter(slug=team_slug).first()
    if team is not None and user is not None and user.is_authenticated and not can_triage(user, team):
        team = None  # a team the person may not write to answers like one that does not exist
    if team is None:
        raise ApplicationError(f"no team {team_slug!r}", code="unknown_team", status=404 if user else 400)
    return team


def report_submit(
    *,
    data: bytes,
    token: ApiToken | None = None,
    user: User | None = None,
    team_slug: str = "",
    format_name: str = "",
    image: str = "",
    stream: str = "",
    idempotency_key: str = "",
    observed_at: dt.datetime | None = None,
    enqueue_now: bool = True,
    deduplicate: bool = True,
) -> tuple[Report, bool]:
    """Store a report and enqueue its processing after commit.

    Returns ``(report, created)``: a repeated Idempotency-Key with the same body
    returns the first report; with a different body it is refused (422).  Without
    a key, the same bytes posted again for the same team, format, image and
    stream within VIGIL_DEDUPLICATE_SECONDS return the first report (senders such
    as falcosidekick retry without keys).
    """
    _validate_options(format_name=format_name, image=image, stream=stream)
    team = resolve_team(token=token, team_slug=team_slug, user=user)
    if not data:
        raise ApplicationError("empty report: post the tool's output as the request body", code="empty")
    digest = hashlib.sha256(data).hexdigest()
    if idempotency_key:
        earlier = Report.objects.filter(token=token, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.content_sha256 != digest:
                raise _idempotency_conflict()
            return earlier, False
    now = timezone.now()
    if deduplicate and not idempotency_key:
        candidates = Report.objects.filter(
            team=team,
            content_sha256=digest,
            declared_format=format_name,
            image_ref=image,
            received_at__gte=now - dt.timedelta(seconds=settings.VIGIL_DEDUPLICATE_SECONDS),
        ).exclude(status=ReportStatus.FAILED)
        if stream:  # the stored stream is the one used, which defaults to the format's
            candidates = candidates.filter(stream=stream)
        # The id only (the common answer is "none"): a full report row is fetched on a hit alone.
        duplicate_id = candidates.order_by("received_at").values_list("pk", flat=True).first()
        if duplicate_id is not None:
            return Report.objects.get(pk=duplicate_id), False
    problem = _validation_problem(data, format_name)
    try:
        report = _store(
            team=team,
            team_named=bool(team_slug),
            token=token,
            user=user,
            format_name=format_name,
            stream=stream,
            image=image,
            digest=digest,
            data=data,
            idempotency_key=idempotency_key,
            observed_at=observed_at or now,
            now=now,
            problem=problem,
            enqueue_now=enqueue_now,
        )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key stored first: answer like it did.
        earlier = Report.objects.filter(token=token, idempotency_key=idempotency_key[:255]).first()
        if earlier is None:
            raise
        if earlier.content_sha256 != digest:
            raise ApplicationError(
                "Idempotency-Key was already used with a different body", code="idempotency_conflict", status=422
            ) from None
        return earlier, False
    if problem:
        raise ApplicationError(problem, code="unparsable_report", status=422, extra={"report": str(report.pk)})
    return report, True


def _validation_problem(data: bytes, format_name: str) -> str:
    """Why the report cannot be processed ("" when it looks fine), checked before answering.

    A small report (up to VIGIL_VALIDATE_SYNC_BYTES) is parsed in full, so a broken one gets a clear 422 now.
    A larger one gets the cheap checks only (it loads: not truncated, not too deep, no duplicate keys; its
    format is recognised and is the declared one): parsing it here would double the CPU it costs, since the
    worker parses it again (parse results are not passed through the queue: ids only).  A large report that
    fails the full parse ends as failed in the worker, with the parser's message.
    """
    try:
        if len(data) <= settings.VIGIL_VALIDATE_SYNC_BYTES:
            registry.parse_bytes(data, format_name or None)
        else:
            registry.choose_parser(load_document(data), format_name or None)
    except ParseError as exc:
        return str(exc)
    return ""


def _idempotency_conflict() -> ApplicationError:
    return ApplicationError("Idempotency-Key was already used with a different body", code="idempotency_conflict", status=422)


def _store(
    *,
    team: Team | None,
    token: ApiToken | None,
    user: User | None,
    format_name: str,
    stream: str,
    image: str,
    digest: str,
    data: bytes,
    idempotency_key: str,
    observed_at: dt.datetime,
    now: dt.datetime,
    problem: str,
    enqueue_now: bool,
    team_named: bool = False,
) -> Report:
    """Commit the report and its raw bytes; publish the task only after the commit."""
    report = Report(
        team=team,
        team_named=team_named,
        token=token,
        submitted_by=user if user is not None and user.is_authenticated else None,
        declared_format=format_name,
        stream=stream,
        image_ref=image,
        content_sha256=digest,
        size_bytes=len(data),
        idempotency_key=idempotency_key[:255],
        observed_at=observed_at,
        received_at=now,
    )
    if problem:
        report.status = ReportStatus.FAILED
        report.error = problem[:2000]
        report.finished_at = now
    _insert(report, data)
    if not problem and enqueue_now:
        transaction.on_commit(lambda: enqueue(report.pk))  # at once outside a transaction: the insert is committed
    return report


def _insert(report: Report, data: bytes) -> None:
    """INSERT the report and its payload, both or neither.

    On PostgreSQL one statement does both (a data-modifying WITH); outside a transaction it commits on its
    own, without the BEGIN and COMMIT round trips: this is the hot path of one Falco alert per request.
    In a caller's transaction it runs in a savepoint, so a duplicate Idempotency-Key leaves that usable.
    """
    if connection.vendor != "postgresql":
        with transaction.atomic():
            report.save(force_insert=True)
            ReportPayload.objects.create(report=report, data=data)
        return
    query = InsertQuery(Report)
    query.insert_values(Report._meta.concrete_fields, [report])
    [(insert_sql, params)] = query.get_compiler(connection=connection).as_sql()
    # Table and column names come from the models; every value is a parameter.
    sql = f'WITH stored AS ({insert_sql} RETURNING "id") INSERT INTO "dashboard_reportpayload" ("report_id", "data") SELECT "id", %s FROM stored'  # noqa: E501, S608
    params = [*params, ReportPayload._meta.get_field("data").get_db_prep_save(data, connection)]
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    report._state.adding = False
    report._state.db = connection.alias


def enqueue(report_id: Any) -> bool:
    """Publish the processing task; never raises (the sweeper re-enqueues what did not get through)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded default: no broker, process in-process
        report_process(report_id)
        return True
    try:
        # By name, so services never import tasks (tasks import services).
        current_app.send_task(PROCESS_TASK, args=[str(report_id)], queue=settings.CELERY_TASK_DEFAULT_QUEUE, retry=False)
    except Exception:
        logger.warning("could not enqueue report %s; the sweeper will retry", report_id, exc_info=True)
        return False
    return True


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
            return None
        report.attempts += 1
        report.status = ReportStatus.PROCESSING
        report.started_at = now
        report.save(update_fields=["attempts", "status", "started_at"])
        return report


def report_process(report_id: Any) -> Report | None:
    """Parse and apply a stored report.  Safe to call any number of times, even concurrently.

    An event report (Falco alerts, admission reviews: they aggregate into findings and never close
    anything) takes other queued event reports of the same sender along, so one task applies up to
    EVENT_BATCH of them in one transaction; their own tasks then find them done.
    """
    report = _claim(report_id, timezone.now())
    if report is None:
        return None
    try:
        parser, result = registry.parse_document(_load_payload(report.pk), report.declared_format or None)
    except ParseError as exc:
        return _fail(report.pk, str(exc))
    job = _Job(report.pk, parser.name, report.stream or parser.stream, result)
    if parser.name in ingest.EVENT_FORMATS:
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
    except Exception as exc:
        logger.exception("report %s could not be applied", job.report_id)
        return _fail(job.report_id, f"internal error while applying the report ({type(exc).__name__}); the report is kept")


def _load_payload(report_id: Any) -> Any:
    """The stored report as a document.  The raw bytes (and the driver's buffer) are released before
    the document is normalised, which keeps a 50 MB report's peak memory down."""
    payload = ReportPayload.objects.values_list("data", flat=True).get(report_id=report_id)
    data = bytes(payload)
    del payload
    return load_document(data)


def _apply(job: _Job) -> Report:
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=job.report_id)
        if locked.status != ReportStatus.PROCESSING:
            return locked  # a concurrent delivery finished it first
        if job.source in ingest.EVENT_FORMATS:
            _serialise_event_applies()
        _apply_locked(locked, job)
    nudges.nudges_after_report(report_id=locked.pk)  # training nudges: event sightings, urgent classes (never raises)
    return locked


def _apply_locked(locked: Report, job: _Job) -> None:
    """Apply one report whose row the caller has locked, inside the caller's transaction."""
    outcome = ingest.apply_report(report=locked, source=job.source, stream=job.stream, result=job.result, now=locked.observed_at)
    triage_rules.after_ingest(
        new_ids=outcome.new_ids, reopened_ids=outcome.reopened_ids, changed_ids=outcome.changed_ids, now=locked.observed_at
    )
    locked.format = job.source
    locked.stream = job.stream
    locked.counts = outcome.counts
    locked.findings_total = outcome.findings_total
    locked.held_closures = outcome.held_closures
    locked.status = ReportStatus.DONE
    locked.error = ""
    locked.finished_at = timezone.now()
    locked.save()


# --- event reports in batches ----------------------------------------------------------------------

#: Most event reports one task applies in one transaction (the one it was given included).
EVENT_BATCH = 200
#: Only event reports up to this size are taken along (a Falco alert is about 2 kB).
EVENT_BATCH_REPORT_BYTES = 256 * 1024
#: PostgreSQL advisory lock key under which event reports are applied (``pg_advisory_xact_lock``).
EVENT_APPLY_LOCK = 0x5649474C_45564E54  # "VIGLEVNT"


def _serialise_event_applies() -> None:
    """Apply event reports one transaction at a time (the lock is released at commit or rollback).

    A batch locks the lifecycle scopes of its reports one report after another, not in one sorted sweep
    like a single report does, so two batches, or a batch and an event report spanning several scopes,
    could each hold a scope the other waits for.  Event applies contend on the same scopes anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EVENT_APPLY_LOCK])


def _process_events(leader: Report, first: _Job) -> Report:
    """Apply the leader and the queued event reports claimed with it, in one transaction.

    Every report is applied by ``ingest.apply_report`` on its own (its counts stay its own), in order of
    arrival.  A report that does not parse fails alone; if applying the batch fails, it is rolled back and
    its reports are applied one by one, so one bad report fails alone.
    """
    jobs = [first]
    for report, document in _claim_events(leader, timezone.now()):
        try:
            parser, result = registry.parse_document(document, report.declared_format or None)
        except ParseError as exc:
            _fail(report.pk, str(exc))
            continue
        jobs.append(_Job(report.pk, parser.name, report.stream or parser.stream, result))
    if len(jobs) == 1:
        return _apply_or_fail(first)
    events = [job for job in jobs if job.source in ingest.EVENT_FORMATS]
    others = [job for job in jobs if job.source not in ingest.EVENT_FORMATS]  # undeclared, and not events after all
    try:
        applied = _apply_batch(events)
    except DATABASE_ERRORS:
        raise  # transient: the leader's task retries; the others are still processing and their own tasks apply them
    except Exception:
        logger.exception("a batch of %d event reports could not be applied together: applying them one by one", len(events))
        applied = {job.report_id: _apply_or_fail(job) for job in events}
    for job in others:
        applied[job.report_id] = _apply_or_fail(job)
    return applied.get(leader.pk) or Report.objects.get(pk=leader.pk)


def _claim_events(leader: Report, now: dt.datetime) -> list[tuple[Report, Any]]:
    """Claim queued reports sent like the leader (same team, declared format, image and stream), counting an
    attempt for each in a committed transaction (a worker that dies still used it), with their documents.

    SKIP LOCKED: a report another worker is claiming right now is left to it.
    """
    with transaction.atomic():
        claimed = list(
            Report.objects.select_for_update(skip_locked=True)
            .filter(
                status=ReportStatus.QUEUED,
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
    payloads = dict(ReportPayload.objects.filter(report_id__in=[r.pk for r in claimed]).values_list("report_id", "data"))
    out = []
    for report in claimed:
        report.status, report.attempts, report.started_at = ReportStatus.PROCESSING, report.attempts + 1, now
        try:
            document = load_document(bytes(payloads.pop(report.pk)))
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
        _serialise_event_applies()
        for job in ordered:
            _apply_locked(locked[job.report_id], job)
    for job in ordered:
        nudges.nudges_after_report(report_id=job.report_id)  # never raises
    return {job.report_id: locked[job.report_id] for job in ordered}


def _fail(report_id: Any, message: str) -> Report:
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report_id)
        if report.status != ReportStatus.DONE:
            report.status = ReportStatus.FAILED
            report.error = message[:2000]
            report.finished_at = timezone.now()
            report.save(update_fields=["status", "error", "finished_at"])
    return report


def report_sweep(*, older_than_seconds: int | None = None) -> list[str]:
    """Re-enqueue reports stuck in queued/processing.  Safe to run twice at once (tasks are idempotent).

    A queued report is stuck when it was received long ago; a processing one when its current
    attempt started long ago (after a backlog, a report received long ago may be applying right now).
    """
    age = settings.VIGIL_STUCK_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - dt.timedelta(seconds=age)
    stuck_queued = Q(status=ReportStatus.QUEUED, received_at__lte=cutoff)
    stuck_processing = Q(status=ReportStatus.PROCESSING, started_at__lte=cutoff)
    stuck = list(Report.objects.filter(stuck_queued | stuck_processing).order_by("received_at").values_list("id", flat=True)[:1000])
    for report_id in stuck:
        enqueue(report_id)
    return [str(pk) for pk in stuck]


def report_confirm_closures(*, report: Report, user: User) -> int:
    """A person confirms closures a report held back; returns how many findings were fixed."""
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        ids = list(locked.held_closures or [])
        if not ids:
            return 0
        fixed = ingest.close_findings(ids=ids, report=locked, now=timezone.now(), reason=f"confirmed by {user}")
        locked.held_closures = []
        locked.counts = {**locked.counts, "fixed": locked.counts.get("fixed", 0) + fixed}
        locked.save(update_fields=["held_closures", "counts"])
    return fixed


def report_record_refusal(*, token: ApiToken | None, user: User | None, message: str, size: int, params: dict[str, str]) -> Report:
    """Record an upload refused before it could be stored (too large, wrong type, bad gzip), without its body."""
    now = timezone.now()
    return Report.objects.create(
        team=token.team if token is not None else None,
        token=token,
        submitted_by=user if user is not None and user.is_authenticated else None,
        # Query parameters are the sender's text: PostgreSQL cannot store NUL characters.
        declared_format=params.get("format", "").replace("\x00", "")[:32],
        image_ref=params.get("image", "").replace("\x00", "")[:512],
        content_sha256="",
        size_bytes=size,
        status=ReportStatus.FAILED,
        error=f"refused: {message}".replace("\x00", "")[:2000],
        observed_at=now,
        received_at=now,
        finished_at=now,
    )
