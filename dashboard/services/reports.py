"""Receiving and processing reports: store first, answer at once, process in a worker.

The raw report and its record are committed before the API answers; the
Celery task gets the report id only, after commit.  Processing is report_processing.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.sql import InsertQuery
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, Report, ReportPayload, ReportStatus, Stream, Team
from dashboard.selectors.access import can_triage
from dashboard.services import ingest, report_processing
from scanners import registry
from scanners.base import ImageRef, ParseError
from scanners.digest import stable_digest
from scanners.loader import load_document

logger = logging.getLogger(__name__)

#: The Celery task name (dashboard/tasks.py); names are stable so queued messages survive refactors.
PROCESS_TASK = "vigil.reports.process"


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
    stable = stable_digest(data)
    problem = "" if _parsed_before(stable, team=team, format_name=format_name, size=len(data)) else _validation_problem(data, format_name)
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
            stable=stable,
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
            raise _idempotency_conflict() from None
        return earlier, False
    if problem:
        raise ApplicationError(problem, code="unparsable_report", status=422, extra={"report": str(report.pk)})
    return report, True


#: Reports from this size on are looked up by their stable digest before they are validated.
KNOWN_GOOD_BYTES = 256 * 1024


def _parsed_before(stable: str, *, team: Team | None, format_name: str, size: int) -> bool:
    """Did a report with the same bytes but for run timestamps (scanners/digest.py) parse and apply?

    Then this one loads and parses the same way, and validating it again would only cost time (a CI
    re-run of an unchanged image).  Small reports (Falco alerts) are validated without the lookup.
    """
    if size < KNOWN_GOOD_BYTES:
        return False
    return Report.objects.filter(stable_sha256=stable, team=team, declared_format=format_name, status=ReportStatus.DONE).exists()


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
    stable: str,
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
        stable_sha256=stable,  # recognises a repeated scan in the worker (reimports.py)
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
            packed, encoding = ReportPayload.pack(data)
            ReportPayload.objects.create(report=report, data=packed, encoding=encoding)
        return
    query = InsertQuery(Report)
    query.insert_values(Report._meta.concrete_fields, [report])
    [(insert_sql, params)] = query.get_compiler(connection=connection).as_sql()
    # Table and column names come from the models; every value is a parameter.
    sql = f'WITH stored AS ({insert_sql} RETURNING "id") INSERT INTO "dashboard_reportpayload" ("report_id", "data", "encoding") SELECT "id", %s, %s FROM stored'  # noqa: E501, S608
    packed, encoding = ReportPayload.pack(data)
    params = [*params, ReportPayload._meta.get_field("data").get_db_prep_save(packed, connection), encoding]
    with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    report._state.adding = False
    report._state.db = connection.alias


def enqueue(report_id: Any) -> bool:
    """Publish the processing task; never raises (the sweeper re-enqueues what did not get through)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded default: no broker, process in-process
        report_processing.report_process(report_id)
        return True
    try:
        # By name, so services never import tasks (tasks import services).
        current_app.send_task(PROCESS_TASK, args=[str(report_id)], queue=settings.CELERY_TASK_DEFAULT_QUEUE, retry=False)
    except Exception:
        logger.warning("could not enqueue report %s; the sweeper will retry", report_id, exc_info=True)
        return False
    return True


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
