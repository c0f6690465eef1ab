"""Receiving and processing reports: store first, answer at once, process in a worker.

The raw report and its record are committed before the API answers; the
Celery task gets the report id only, after commit.  Processing is claim.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from dashboard import metrics
from dashboard.db.report_insert import SameBytes, insert_report
from dashboard.errors import ApplicationError
from dashboard.ingest import apply, claim, publish
from dashboard.ingest.publish import TASKS
from dashboard.ingest.rights import ForeignScopeError, rights_of
from dashboard.ingest.scope_check import foreign_only
from dashboard.models import ApiToken, Finding, Report, ReportStatus, Stream, Team
from dashboard.selectors.access import can_triage, triage_team_ids
from dashboard.services.clusters import resolve_cluster
from scanners import registry
from scanners.base import ImageRef, ParseError, Parser, ParseResult
from scanners.digest import stable_digest
from scanners.loader import load_document

logger = logging.getLogger(__name__)

PROCESS_TASK = TASKS.PROCESS_REPORT
EVENTS_TASK = TASKS.PROCESS_EVENTS


def is_event_report(*, declared_format: str, stream: str) -> bool:
    """Is this report processed on the events queue?  From its declared format, else the one it was recognised
    as when it was received, or its declared stream."""
    return declared_format in apply.EVENT_FORMATS or stream == Stream.RUNTIME


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


def _check_in_insert(size: int) -> bool:
    """Is the duplicate check made by the INSERT itself (one round trip instead of two)?

    On PostgreSQL, for reports small enough that storing one costs little: a larger report is looked up
    first, so a repeat of it is not validated and compressed for nothing.
    """
    return connection.vendor == "postgresql" and size < KNOWN_GOOD_BYTES


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
    cluster: str = "",
    occurrences: int = 1,
) -> tuple[Report, bool]:
    """Store a report and enqueue its processing after commit.

    Returns ``(report, created)``: a repeated Idempotency-Key with the same body
    returns the first report; with a different body it is refused (422).  Without
    a key, the same bytes posted again for the same team, format, image and
    stream within VIGIL_DEDUPLICATE_SECONDS return the first report (senders such
    as falcosidekick retry without keys).  ``cluster``: the ``cluster=`` the sender named (a token bound to a
    cluster speaks for that one: clusters.resolve_cluster).  ``occurrences``: how many identical events the report
    stands for (Vigil's own, never a sender's: services/admission_repeats.py); only for a declared event format, and
    never answered with an earlier report of the same bytes (that would lose them).
    """
    _validate_options(format_name=format_name, image=image, stream=stream)
    if occurrences < 1 or (occurrences > 1 and format_name not in apply.EVENT_FORMATS):
        raise ApplicationError(f"occurrences {occurrences} is not a count of events of an event format", code="invalid_occurrences")
    deduplicate = deduplicate and occurrences == 1
    submission = _Submission(
        team=resolve_team(token=token, team_slug=team_slug, user=user),
        cluster=resolve_cluster(token=token, requested=cluster),
        token=token,
        user=user,
        team_slug=team_slug,
        format_name=format_name,
        image=image,
        stream=stream,
        idempotency_key=idempotency_key,
        digest=hashlib.sha256(data).hexdigest(),
        now=timezone.now(),
        occurrences=occurrences,
    )
    if not data:
        raise ApplicationError("empty report: post the tool's output as the request body", code="empty")
    earlier, same_bytes = _earlier(submission, size=len(data), deduplicate=deduplicate)
    if earlier is not None:
        return earlier, False
    return _validate_and_store(submission, data, same_bytes=same_bytes, observed_at=observed_at, enqueue_now=enqueue_now)


@dataclasses.dataclass(frozen=True)
class _Submission:
    """Who sent a report, for which team and cluster, with which options; its digest and when it arrived."""

    team: Team | None
    cluster: str
    token: ApiToken | None
    user: User | None
    team_slug: str
    format_name: str
    image: str
    stream: str
    idempotency_key: str
    digest: str
    now: dt.datetime
    occurrences: int = 1


def _earlier(submission: _Submission, *, size: int, deduplicate: bool) -> tuple[Report | None, SameBytes | None]:
    """``(the earlier report this one repeats, or None; what the INSERT still checks for the same bytes)``:
    the report stored under the same Idempotency-Key, or one of the same bytes (``SameBytes``)."""
    if submission.idempotency_key:
        earlier = _same_key(submission.token, submission.idempotency_key, submission.digest)
        if earlier is not None:
            return earlier, None
    same_bytes = None
    if deduplicate and not submission.idempotency_key:
        same_bytes = SameBytes.of(
            team=submission.team,
            digest=submission.digest,
            format_name=submission.format_name,
            image=submission.image,
            stream=submission.stream,
            cluster=submission.cluster,
            now=submission.now,
        )
    same_bytes, duplicate = _same_bytes_before_insert(same_bytes, size=size)
    return duplicate, same_bytes


def _validate_and_store(
    submission: _Submission, data: bytes, *, same_bytes: SameBytes | None, observed_at: dt.datetime | None, enqueue_now: bool
) -> tuple[Report, bool]:
    """Validate the report (a 403 for one about other teams' findings only), store it, count it (a 422 for one
    that failed validation: it is stored, as failed)."""
    sub = submission
    stable = stable_digest(data)
    options = (sub.format_name, sub.stream, sub.image)
    problem, detected = _checked(data, stable, token=sub.token, user=sub.user, team=sub.team, team_slug=sub.team_slug, options=options)
    try:
        report, created = _store(
            team=sub.team,
            team_named=bool(sub.team_slug),
            cluster=sub.cluster,
            token=sub.token,
            user=sub.user,
            format_name=sub.format_name,
            stream=sub.stream,
            image=sub.image,
            digest=sub.digest,
            stable=stable,
            data=data,
            idempotency_key=sub.idempotency_key,
            observed_at=observed_at or sub.now,
            now=sub.now,
            problem=problem,
            enqueue_now=enqueue_now,
            same_bytes=same_bytes,
            events=is_event_report(declared_format=sub.format_name or detected, stream=sub.stream),
            occurrences=sub.occurrences,
        )
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key stored first: answer like it did.
        earlier = _same_key(sub.token, sub.idempotency_key[:255], sub.digest)
        if earlier is None:
            raise
        return earlier, False
    if not created:  # the same bytes were received before (checked in the INSERT): the first report answers
        return report, False
    _received(report, received_as=sub.format_name or detected, stream=sub.stream, problem=problem)
    return report, True


def _same_bytes_before_insert(same_bytes: SameBytes | None, *, size: int) -> tuple[SameBytes | None, Report | None]:
    """Look for an earlier report of the same bytes now, unless the INSERT itself will (``_check_in_insert``):
    ``(what the INSERT still checks, the earlier report found)``."""
    if same_bytes is None or _check_in_insert(size):
        return same_bytes, None
    # The id only (the common answer is "none"): a full report row is fetched on a hit alone.
    duplicate_id = same_bytes.earliest_id()
    return None, Report.objects.get(pk=duplicate_id) if duplicate_id is not None else None


def _same_key(token: ApiToken | None, idempotency_key: str, digest: str) -> Report | None:
    """The report stored earlier under this Idempotency-Key, or None; the same key with another body is a 422."""
    earlier = Report.objects.filter(token=token, idempotency_key=idempotency_key).first()
    if earlier is not None and earlier.content_sha256 != digest:
        raise _idempotency_conflict()
    return earlier


def _received(report: Report, *, received_as: str, stream: str, problem: str) -> None:
    """Count a stored report; one that failed the synchronous validation answers 422 (it is kept, as failed)."""
    metrics.report_received(
        format_name=received_as,
        stream=stream or (registry.get_parser(received_as).stream if received_as else ""),
        event=is_event_report(declared_format=received_as, stream=stream),
        failed=bool(problem),
    )
    if problem:
        raise ApplicationError(problem, code="unparsable_report", status=422, extra={"report": str(report.pk)})


def _checked(
    data: bytes, stable: str, *, token: ApiToken | None, user: User | None, team: Team | None, team_slug: str, options: tuple[str, str, str]
) -> tuple[str, str]:
    """Validate a report not parsed before (``(problem, detected format)``), refusing one about nothing but
    other teams' findings (403)."""
    format_name, stream, image = options
    known_good = _parsed_before(stable, team=team, format_name=format_name, size=len(data))
    problem, detected, parsed = ("", "", None) if known_good else _validation(data, format_name)
    if parsed is not None and (token is not None or user is not None):
        _refuse_foreign(parsed, token=token, user=user, team=team, team_named=bool(team_slug), stream=stream, image=image)
    return problem, detected


def _refuse_foreign(
    parsed: tuple[Parser, ParseResult],
    *,
    token: ApiToken | None,
    user: User | None,
    team: Team | None,
    team_named: bool,
    stream: str,
    image: str,
) -> None:
    """A 403 for a report about nothing but findings of teams its sender may not change (scope_check.py), before
    it is stored: the API records the refusal."""
    parser, result = parsed
    if parser.name in apply.EVENT_FORMATS:
        return  # decided in the worker: an alert's receive path stays two statements
    rights = rights_of(token=token, user=user)
    source, stream = parser.name, stream or parser.stream
    if foreign_only(rights=rights, team=team, team_named=team_named, source=source, stream=stream, image_ref=image, result=result):
        raise ForeignScopeError()


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


def _validation(data: bytes, format_name: str) -> tuple[str, str, tuple[Parser, ParseResult] | None]:
    """Why the report cannot be processed ("" when it looks fine), checked before answering, the format it
    was recognised as ("" when it was not), and the parsed report when it was parsed in full.

    A small report (up to VIGIL_VALIDATE_SYNC_BYTES) is parsed in full, so a broken one gets a clear 422 now.
    A larger one gets the cheap checks only (it loads: not truncated, not too deep, no duplicate keys; its
    format is recognised and is the declared one): parsing it here would double the CPU it costs, since the
    worker parses it again (parse results are not passed through the queue: ids only).  A large report that
    fails the full parse ends as failed in the worker, with the parser's message.
    """
    try:
        if len(data) <= settings.VIGIL_VALIDATE_SYNC_BYTES:
            parsed = registry.parse_bytes(data, format_name or None)
            return "", parsed[0].name, parsed
        parser = registry.choose_parser(load_document(data), format_name or None)
    except ParseError as exc:
        return str(exc), "", None
    return "", parser.name, None


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
    cluster: str = "",
    same_bytes: SameBytes | None = None,
    events: bool = False,
    occurrences: int = 1,
) -> tuple[Report, bool]:
    """Commit the report and its raw bytes; publish the task only after the commit.

    Returns ``(report, True)``, or ``(earlier, False)`` when ``same_bytes`` finds an earlier report (nothing stored).
    """
    report = Report(
        team=team,
        team_named=team_named,
        cluster=cluster,
        token=token,
        submitted_by=user if user is not None and user.is_authenticated else None,
        declared_format=format_name,
        stream=stream,
        image_ref=image,
        content_sha256=digest,
        stable_sha256=stable,  # recognises a repeated scan in the worker (repeat.py)
        size_bytes=len(data),
        idempotency_key=idempotency_key[:255],
        observed_at=observed_at,
        received_at=now,
        occurrences=occurrences,
    )
    if problem:
        report.status = ReportStatus.FAILED
        report.error = problem[:2000]
        report.finished_at = now
    earlier_id = insert_report(report, data, same_bytes=same_bytes)
    if earlier_id is not None:
        return Report.objects.get(pk=earlier_id), False
    if not problem and enqueue_now:
        # An event report its sender's events task takes along is published only when no such task is pending.
        pending = claim.events_pending_key(report) if claim.takes_along(events=events, size=len(data)) else ""
        on_commit = functools.partial(enqueue, report.pk, events=events, pending_key=pending, stream=report.stream)
        transaction.on_commit(on_commit)  # at once outside a transaction: the insert is committed
    return report, True


def enqueue(report_id: Any, *, events: bool = False, pending_key: str = "", stream: str = "") -> bool:
    """Publish the processing task (on the events queue for an event report); never raises (the sweeper
    re-enqueues what did not get through).  With ``pending_key`` (an event report its sender's events task takes
    along, received for ``stream``), only when no task of that sender is pending: the pending one will find it."""
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded default: no broker, process in-process
        claim.report_process(report_id)
        return True
    try:
        # By name, so services never import tasks (tasks import services); on a producer kept by the thread.
        if pending_key:
            args = [str(report_id), stream]
            publish.publish_unless_pending(EVENTS_TASK, args, key=pending_key, seconds=claim.EVENT_PENDING_SECONDS)
        else:
            publish.enqueue(EVENTS_TASK if events else PROCESS_TASK, [str(report_id)])
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
    stuck = list(
        Report.objects.filter(stuck_queued | stuck_processing).order_by("received_at").values_list("id", "declared_format", "stream")[:1000]
    )
    for report_id, declared_format, stream in stuck:
        enqueue(report_id, events=is_event_report(declared_format=declared_format, stream=stream))
    return [str(pk) for pk, _, _ in stuck]


def report_confirm_closures(*, report: Report, user: User, ids: Collection[int] | None = None) -> int:
    """A person confirms closures a report held back (all, or the selection ``ids``); returns how many
    findings were fixed.  Held findings not selected stay held for a later decision.

    Needs the triage right on the team owning each chosen finding (on unowned ones: an administrator);
    seeing the report is not enough.
    """
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        held = list(locked.held_closures or [])
        chosen = held if ids is None else sorted(set(held) & {int(pk) for pk in ids})
        if not chosen:
            return 0
        allowed = triage_team_ids(user)
        owners = set(Finding.objects.filter(pk__in=chosen).values_list("team_id", flat=True))
        if allowed is not None and not owners <= allowed:
            raise ApplicationError(
                "confirming these closures needs the triage right on the team owning the findings", code="forbidden", status=403
            )
        fixed = apply.close_findings(ids=chosen, report=locked, now=timezone.now(), reason=f"confirmed by {user}")
        locked.held_closures = sorted(set(held) - set(chosen))
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
