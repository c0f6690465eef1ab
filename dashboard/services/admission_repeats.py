"""The admission webhook's events: a repeat is counted (one small row), not stored again as a report.

Why: the API server sends the same request over and over (every pod of a ReplicaSet, a crash-looping Job, a
controller's retries), and each denial or warned decision stored as an event report (the row with its payload, the
publish, then the worker's parse and apply) cost about half of a warned decision's CPU.  So each event has a key
(``event_key``: the cluster, the policies that answered, and ``scanners.admission_review.event_digest`` of Vigil's
AdmissionReview, which leaves out only what differs per request), and within REPEAT_WINDOW of the first event of
a key a web thread stores that first one as before (a full report, published at once) and each further one as one
``AdmissionRepeat`` row naming it: one INSERT, no payload, no publish.  ``repeats_flush`` (a beat task, every
minute) deletes the repeats and stores, per report they repeat, one event report with its payload and
``occurrences`` = their number, which ingest counts (``ingest/apply_events.py``).  So counts stay exact: an event
shows up at once, its repeats within a minute, "last seen" at the latest repeat.

The memo of first events is per thread, like services/running.py's sightings: bounded, cleared when too big, and
set only once the first report is committed (a rolled-back one is never repeated).  Losing it (a restart, another
gunicorn worker or thread) costs one more full report, never a count.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from dashboard.db.admission_repeats import Taken, insert_repeat, take_repeats
from dashboard.errors import ApplicationError
from dashboard.ingest.receive import report_submit
from dashboard.models import Report, ReportPayload
from scanners.admission_review import event_digest
from scanners.base import ParseError

logger = logging.getLogger(__name__)

#: How long after the first event of a key its repeats are counted on its report (then a new full report starts).
REPEAT_WINDOW = dt.timedelta(seconds=60)
#: Reports whose repeats one flush transaction turns into reports.
FLUSH_BATCH = 1000
#: Keys one thread remembers before it forgets them all (each costs one more full report then, nothing else).
_MEMO_LIMIT = 20_000
FORMAT, STREAM = "admission-review", "admission"


class _Firsts(threading.local):
    """Per key: when this thread stored the key's first event (``now``, as a timestamp) and its report's id."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[float, Any]] = {}


_firsts = _Firsts()


def forget_firsts() -> None:
    """Forget the first events this thread stored (tests, and a new process)."""
    _firsts.of.clear()


def event_key(*, event: dict[str, Any], cluster: str, policies: Iterable[tuple[int | None, int, str]]) -> str:
    """The key of an admission event: two events with one key make the same findings (``event_digest``), from the
    same cluster, answered under the same policies (team, version, mode): a changed policy starts a new report."""
    answered = sorted({f"{team}:{version}:{mode}" for team, version, mode in policies})
    text = json.dumps([cluster, event_digest(event), answered], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def admission_event_record(
    *, event: dict[str, Any], cluster: str, policies: Iterable[tuple[int | None, int, str]], now: dt.datetime
) -> None:
    """Record one admission event (Vigil's AdmissionReview, request and answer): a repeat within REPEAT_WINDOW of
    its key's first event as one AdmissionRepeat row, else as an event report (ApplicationError when refused)."""
    try:
        key = event_key(event=event, cluster=cluster, policies=policies)
    except ParseError:
        key = ""  # not something the parser reads: stored in full, where report_submit says what is wrong
    first = _first_of(key, now)
    if first is not None and _repeat(key, first, now):
        return
    # Vigil's own record of its decision, not a report of the admission token's team: that token may ask about any
    # team's images, and the event belongs to the team owning the namespace or image (a team's report may not change
    # another team's findings).  The decision row keeps who asked.
    data = json.dumps(event).encode()
    report, _ = report_submit(data=data, token=None, format_name=FORMAT, stream=STREAM, cluster=cluster, deduplicate=False, observed_at=now)
    if key:
        transaction.on_commit(functools.partial(_remember, key, report.pk, now.timestamp()))


def _first_of(key: str, now: dt.datetime) -> Any:
    """The report of the key's first event, if this thread stored it within REPEAT_WINDOW; else None."""
    seen = _firsts.of.get(key) if key else None
    if seen is None or now.timestamp() - seen[0] >= REPEAT_WINDOW.total_seconds():
        return None
    return seen[1]


def _remember(key: str, report_id: Any, clock: float) -> None:
    if len(_firsts.of) >= _MEMO_LIMIT:
        _firsts.of.clear()
    _firsts.of[key] = (clock, report_id)


def _repeat(key: str, report_id: Any, now: dt.datetime) -> bool:
    """Count a repeat of ``report_id``: one INSERT.  False when that report is gone (then this event is stored in
    full and becomes the key's first)."""
    if insert_repeat(report_id=report_id, at=now):
        return True
    _firsts.of.pop(key, None)
    return False


def repeats_flush(*, batch: int = FLUSH_BATCH) -> int:
    """Turn the repeats into event reports, ``batch`` repeated reports per transaction until none is left; returns
    how many reports were stored.  At least once and idempotent: the repeats are deleted in the transaction that
    stores their reports (published after its commit), so a run that dies before the commit leaves them all for the
    next one, and after it they are gone."""
    stored = 0
    while True:
        with transaction.atomic():
            taken = take_repeats(limit=batch)
            stored += _store(taken)
        if len(taken) < batch:
            return stored


def _store(taken: list[Taken]) -> int:
    """One event report per repeated report: its first report's payload, counting its repeats, seen at the latest."""
    if not taken:
        return 0
    ids = [group.report_id for group in taken]
    firsts = {pk: (cluster, stream) for pk, cluster, stream in Report.objects.filter(pk__in=ids).values_list("pk", "cluster", "stream")}
    payloads = {
        pk: ReportPayload.unpack(data, encoding)
        for pk, data, encoding in ReportPayload.objects.filter(report_id__in=ids).values_list("report_id", "data", "encoding")
    }
    stored = 0
    for group in taken:
        first, raw = firsts.get(group.report_id), payloads.get(group.report_id)
        if first is None or raw is None:  # retention keeps both while a repeat names the report: never expected
            logger.error("%d repeats of admission event report %s are lost: its payload is gone", group.count, group.report_id)
            continue
        cluster, stream = first
        try:
            report_submit(
                data=raw,
                token=None,
                format_name=FORMAT,
                stream=stream or STREAM,
                cluster=cluster,
                deduplicate=False,
                observed_at=group.latest,
                occurrences=group.count,
            )
        except ApplicationError:  # refused by validation, it is stored as failed like its first report: not retried
            logger.exception("the %d repeats of admission event report %s could not be stored", group.count, group.report_id)
            continue
        stored += 1
    return stored
