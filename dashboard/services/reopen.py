"""The one way a closed finding reopens: a report names a fixed finding again, a risk acceptance expires, or a
person sets a closed finding back to open.

``findings_reopen`` changes the status, records the event through the one writer (finding_events) and does
what a reopening implies: the SLA clock restarts when ``VIGIL_SLA_RESTART_ON_REOPEN`` says so (the due date
follows at the re-score), and a closed ticket of a finding a report saw again is marked "seen after close".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.conf import settings
from django.utils import timezone

from dashboard.db.update_values import bulk_update_rows
from dashboard.models import Finding, FindingEvent, Report, Status, Ticket, TicketLink
from dashboard.services import intel
from dashboard.services.finding_events import event_row, events_write

BATCH = 1000


class Reopening(NamedTuple):
    """One finding reopening: its status before, when, and the report that saw it again (None: not a report)."""

    finding_id: int
    from_status: str
    at: dt.datetime
    report: Report | None = None


def findings_reopen(
    *,
    rows: Sequence[Reopening],
    by: Any = None,
    reason: str = "",
    type: str = FindingEvent.Type.REOPENED,
    batch: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    rescore: bool = True,
) -> list[int]:
    """Reopen these findings (the caller holds their rows and has checked the actor's right); returns their ids.

    ``events``: a list the caller writes later with its own (ingest writes a report's events at once), else they
    are written here.  ``rescore=False`` when the caller re-scores them itself (ingest does, after its triage
    rules, for everything a report changed)."""
    restart = settings.VIGIL_SLA_RESTART_ON_REOPEN
    fields = ["status", "fixed_at", "status_changed_at", *(["sla_started_on"] if restart else [])]
    new_events: list[dict[str, Any]] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        changed = [Finding(pk=row.finding_id, status=Status.OPEN, fixed_at=None, status_changed_at=row.at) for row in chunk]
        for finding, row in zip(changed, chunk, strict=True):
            finding.sla_started_on = timezone.localdate(row.at)
        bulk_update_rows(Finding, changed, fields, batch_size=BATCH)
        new_events.extend(
            event_row(
                finding_id=row.finding_id,
                type=type,
                by=by,
                report=row.report,
                now=row.at,
                reason=reason,
                from_status=row.from_status,
                to_status=Status.OPEN,
                batch=batch,
                data=data,
            )
            for row in chunk
        )
    if events is None:
        events_write(new_events)
    else:
        events.extend(new_events)
    _tickets_seen_after_close([row.finding_id for row in rows if row.report is not None])
    ids = [row.finding_id for row in rows]
    if rescore and rows:
        intel.findings_rescore(ids=ids, today=timezone.localdate(max(row.at for row in rows)))
    return ids


def _tickets_seen_after_close(ids: Sequence[int]) -> None:
    """Findings a report saw again: where a closed ticket was theirs, it did not fix them (shown beside the ticket)."""
    for start in range(0, len(ids), BATCH):
        TicketLink.objects.filter(finding_id__in=ids[start : start + BATCH], ticket__state=Ticket.State.CLOSED).update(
            seen_after_close=True
        )
