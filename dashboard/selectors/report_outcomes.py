"""What a report changed, read from stored data: its findings by outcome, the closures it holds, and the
reports waiting for a person to confirm them.

Each outcome is known exactly: ``new`` are the findings the report first saw (``Finding.first_report``);
``reopened`` and ``fixed`` are FindingEvent rows carrying the report (confirmed held closures too);
``unchanged`` is ``Report.unchanged_ids`` (an unchanged finding gets no event); ``held`` is
``Report.held_closures`` (what is still waiting for confirmation).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from django.db.models import Max, Q, QuerySet

from dashboard.models import Finding, FindingEvent, Report, ReportStatus, Team
from dashboard.models.access import sees_everything, visible_teams

#: The outcomes, in the order a report's page lists them.
OUTCOMES = ("new", "reopened", "unchanged", "fixed", "held")
_EVENT_OF = {"reopened": FindingEvent.Type.REOPENED, "fixed": FindingEvent.Type.FIXED}
#: A report's page lists at most this many held findings (a selection is confirmed from them).
HELD_SHOWN = 500


def report_id_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def outcome_filter(*, report: str, outcome: str) -> Q:
    """Findings of ``report`` with ``outcome`` (any outcome when empty); nothing for a malformed report id."""
    report_id = report_id_or_none(report)
    if report_id is None:
        return Q(pk__in=[])
    wanted = [outcome] if outcome else list(OUTCOMES)
    condition = Q(first_report_id=report_id) if "new" in wanted else Q(pk__in=[])
    events = [_EVENT_OF[name] for name in wanted if name in _EVENT_OF]
    if events:
        condition |= Q(pk__in=FindingEvent.objects.filter(report_id=report_id, type__in=events).values("finding_id"))
    stored = {"unchanged": "unchanged_ids", "held": "held_closures"}
    columns = [column for name, column in stored.items() if name in wanted]
    if columns:
        row = Report.objects.filter(pk=report_id).values(*columns).first() or {}
        ids = sorted({pk for column in columns for pk in row.get(column) or []})
        if ids:
            condition |= Q(pk__any=ids)
    return condition


@dataclasses.dataclass(frozen=True)
class HeldFinding:
    finding: Finding
    #: The finding's latest event (an assignment, a comment, a status change, a report).
    last_activity: dt.datetime | None
    #: A report after the one holding the closure named it again: it is probably not fixed.
    seen_since: bool


def held_findings(*, user: Any, report: Report) -> list[HeldFinding]:
    """The findings ``report`` holds closures for, as ``user`` may see them, riskiest first."""
    ids = list(report.held_closures or [])
    if not ids:
        return []
    rows = (
        Finding.objects.visible_to(user)
        .filter(pk__any=ids)
        .select_related("assignee", "image")
        .annotate(last_activity=Max("events__created_at"))
        .order_by("-risk_score", "id")[:HELD_SHOWN]
    )
    return [HeldFinding(row, row.last_activity, row.last_seen > report.observed_at) for row in rows]  # type: ignore[attr-defined]


def reports_waiting(*, user: Any, team: Team | None = None, limit: int = 20) -> QuerySet[Report]:
    """Reports of the user's teams (or one team) holding closures for a person to confirm, latest first."""
    qs = Report.objects.filter(status=ReportStatus.DONE).exclude(held_closures=[]).select_related("team", "image")
    if team is not None:
        qs = qs.filter(team=team)
    elif not sees_everything(user):
        qs = qs.filter(team__in=visible_teams(user))
    return qs.defer("unchanged_ids", "scopes").order_by("-received_at")[:limit]


def outcome_counts(*, user: Any, report: Report) -> dict[str, int]:
    """How many findings ``user`` may see had each outcome: exactly what each outcome's queue link lists."""
    visible = Finding.objects.visible_to(user)
    return {name: visible.filter(outcome_filter(report=str(report.pk), outcome=name)).count() for name in OUTCOMES}
