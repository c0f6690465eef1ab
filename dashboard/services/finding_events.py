"""The one writer of finding events: one way to build an event row, one way to write many.

Every change to a finding is an event with who (a person, a token, a rule, a report or Vigil itself), when
and why.  ``event_row`` builds one (a plain dict of column values, cheap for ingest's thousands) and
``events_write`` writes a list of them: through ``bulk_create`` for the few a person's action makes (one
INSERT per BATCH rows), through PostgreSQL COPY for the many a large report makes (dashboard/db/copy_rows.py).
A lint test (tests/dashboard/test_event_writer.py) keeps every other module from writing events itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import connection

from dashboard.db.copy_rows import insert_rows
from dashboard.models import FindingEvent, Report
from dashboard.services.audit import actor_label

#: Rows per INSERT through the ORM.
BATCH = 1000
#: From this many rows on PostgreSQL, COPY (a temporary table, one INSERT ... SELECT) beats a multi-row INSERT.
COPY_FROM = BATCH


def person_of(by: Any) -> User | None:
    """The person behind an action (None for a token, Vigil itself or a report)."""
    if by is None or getattr(by, "api_token", None) is not None or not getattr(by, "is_authenticated", False):
        return None
    return by  # type: ignore[no-any-return]


def event_row(
    *,
    finding_id: int,
    type: str,
    now: dt.datetime,
    by: Any = None,
    report: Report | None = None,
    reason: str = "",
    from_status: str = "",
    to_status: str = "",
    batch: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    rule_id: int | None = None,
    undoes_id: int | None = None,
) -> dict[str, Any]:
    """One event (column attname -> value): ``by`` a person or a token (a token is named in ``data``), ``report``
    the report that caused it, ``rule_id`` the triage rule that acted, ``undoes_id`` the event it reverts."""
    extra = dict(data or {})
    if getattr(by, "api_token", None) is not None:
        extra["by"] = actor_label(by)
    person = person_of(by)
    return {
        "finding_id": finding_id,
        "type": type,
        "from_status": from_status,
        "to_status": to_status,
        "actor_id": person.pk if person is not None else None,
        "report_id": report.pk if report is not None else None,
        "reason": reason[:5000],
        "created_at": now,
        "batch": batch,
        "data": extra,
        "triage_rule_id": rule_id,
        "undoes_id": undoes_id,
    }


def events_write(rows: Sequence[dict[str, Any]]) -> None:
    """Write event rows built by ``event_row``, picking the fast path for their number and the database."""
    if not rows:
        return
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
        insert_rows(FindingEvent, rows)
        return
    FindingEvent.objects.bulk_create([FindingEvent(**row) for row in rows], batch_size=BATCH)
