"""Apply one parsed report to the findings: bulk upsert by fingerprint and lifecycle (rows: finding_rows.py).

Runs inside the caller's transaction with the report's lifecycle scopes
locked (see ``report_processing.report_process``).  The number of queries is constant
per batch of findings, never per finding.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from dashboard.models import ACTIVE_STATUSES, Finding, FindingEvent, Report, Status
from dashboard.services import intel, risk, running
from dashboard.services.bulk_inserts import insert_rows
from dashboard.services.finding_rows import (
    EVENT_FORMATS,
    PER_OCCURRENCE,
    Item,
    changed_values,
    chunks,
    event_row,
    image_of,
    items_of,
    new_row,
    read_chunks,
    record_occurrences,
    reopened_values,
    score_new,
    stored_findings,
    write_changed,
)
from dashboard.services.images import LAST_SEEN_STEP, Recorded, images_record
from dashboard.services.scopes import covered_scopes, explicitly_evaluated, lock_scopes, mark_applied
from scanners.base import ImageRef, ParseResult
from scanners.digest import STABLE_FORMATS

__all__ = ["EVENT_FORMATS", "IngestOutcome", "apply_report", "close_findings"]

_ABSENT = "absent from a complete report"
_PASSED = "evaluated again and passed"


@dataclasses.dataclass
class IngestOutcome:
    counts: dict[str, int]
    held_closures: list[int]
    findings_total: int
    #: For triage after ingest (issue 6): findings this report created, reopened, or whose content changed.
    new_ids: list[int] = dataclasses.field(default_factory=list)
    reopened_ids: list[int] = dataclasses.field(default_factory=list)
    changed_ids: list[int] = dataclasses.field(default_factory=list)
    #: Every finding the report named (for event sightings: nudges.sightings_record).
    finding_ids: list[int] = dataclasses.field(default_factory=list)
    #: The scopes a snapshot scan spoke for, kept on the report for recognising a repeat (reimports.py).
    scopes: list[str] = dataclasses.field(default_factory=list)


def _policy_of(item: Item) -> str:
    policy = item.parsed.details.get("policy")
    return policy if isinstance(policy, str) else ""


def apply_report(*, report: Report, source: str, stream: str, result: ParseResult, now: dt.datetime) -> IngestOutcome:
    """Upsert the report's findings and close what it no longer shows.  Caller holds the transaction.

    (A batch of event reports is applied as one by ``event_ingest``.)
    """
    override = ImageRef.parse(report.image_ref) if report.image_ref else None
    team = report.team
    items = items_of(team, source, stream, result, override)
    events_only = source in EVENT_FORMATS
    scopes = (
        set()
        if events_only
        else covered_scopes(
            team=team,
            source=source,
            stream=stream,
            result=result,
            artifact=override or result.artifact,
            item_scopes=[(item.scope_key, _policy_of(item)) for item in items.values()],
        )
    )
    # Open findings the report evaluated again and found passing (a lone policy result): fixed, their scopes locked too.
    resolved: dict[int, str] = {}
    if result.resolved:
        passing = Finding.objects.filter(fingerprint__any=result.resolved, status__in=ACTIVE_STATUSES).values_list("id", "scope_key")
        resolved = dict(passing)
    locked = scopes | {item.scope_key for item in items.values()} | set(resolved.values())
    lock_scopes(locked)
    if not events_only:  # what a repeated scan is compared with (reimports.py); events never repeat
        mark_applied(locked, report=report)

    # Open findings in the covered scopes before this report: the base for the "close more than half" rule.
    active_before: dict[str, tuple[int, str]] = {}
    for chunk in chunks(sorted(scopes)):
        rows = Finding.objects.filter(scope_key__in=chunk, status__in=ACTIVE_STATUSES).values_list("id", "fingerprint", "scope_key")
        active_before.update({fp: (pk, key) for pk, fp, key in rows})

    image_refs = [item.image for item in items.values() if item.image is not None]
    if override is not None:
        image_refs.append(override)
    elif result.artifact is not None:
        image_refs.append(result.artifact)
    images = images_record(image_refs, team, result.labels, now, Recorded())
    # Before scoring: a finding of an image this report sees running is born running.
    running.sightings_of_report(items=items.values(), source=source, team_id=report.team_id, now=now)
    report_image = override or result.artifact
    main_image = images.get(report_image.name) if report_image is not None else None
    if main_image is not None and report.image_id != main_image.pk:
        report.image = main_image

    sla = risk.sla_days_for(team.sla_days if team is not None else None)
    counts = {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}
    triaged = IngestOutcome(counts=counts, held_closures=[], findings_total=0)
    events: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    known = stored_findings(list(items), with_details=events_only)
    seen_ids: list[int] = []
    facts: intel.Facts | None = None
    for chunk in chunks(list(items)):
        stored = {fp: known[fp] for fp in chunk if fp in known}
        labels = result.labels
        new, facts = score_new(
            [new_row(items[fp], report, image_of(items[fp], images), stream, now, labels) for fp in chunk if fp not in stored],
            facts,
            items,
        )
        for pk, fp in insert_rows(Finding, new, unique_fields=["fingerprint"], returning=["id", "fingerprint"]):
            ids[fp] = pk
            triaged.new_ids.append(pk)
            events.append(event_row(pk, FindingEvent.Type.CREATED, report, now, to_status=Status.OPEN))
            counts["new"] += 1
        changed: dict[tuple[str, ...], list[Finding]] = {}
        for fp, row in stored.items():
            ids[fp] = row.id
            values = changed_values(row, items[fp], event=events_only)
            if row.status == Status.FIXED:
                values.update(reopened_values(severity=values.get("severity", row.severity), now=now, sla=sla))
                events.append(event_row(row.id, FindingEvent.Type.REOPENED, report, now, from_status=Status.FIXED, to_status=Status.OPEN))
                counts["reopened"] += 1
                triaged.reopened_ids.append(row.id)
            else:
                counts["unchanged"] += 1
            if values:
                changed.setdefault(tuple(sorted(values)), []).append(
                    Finding(pk=row.id, last_seen=max(row.last_seen, now), last_report=report, **values)
                )
                if values.keys() - PER_OCCURRENCE:  # content, scope or status: triage looks again
                    triaged.changed_ids.append(row.id)
            else:
                seen_ids.append(row.id)
        write_changed(changed)
    for chunk in read_chunks(seen_ids):
        # Unchanged findings: move "last seen" forward at most once per LAST_SEEN_STEP, so re-importing
        # the same report (CI re-runs) writes nothing.
        Finding.objects.filter(pk__any=chunk, last_seen__lt=now - LAST_SEEN_STEP).update(last_seen=now, last_report=report)
    record_occurrences((ids[fp], item, now) for fp, item in items.items() if fp in ids)

    held: list[int] = []
    if not events_only:
        # A policy the report explicitly evaluated on a resource (pass/skip) is positive evidence of a fix;
        # everything else missing is closed by absence, which the "more than half" rule guards.
        evaluated = explicitly_evaluated(stream, source, result)
        missing = [(pk, key) for fp, (pk, key) in active_before.items() if fp not in items]
        passed = [pk for pk, key in missing if key in evaluated]
        absent = [pk for pk, key in missing if key not in evaluated]
        if absent and len(absent) * 2 > len(active_before):
            held = sorted(absent)
            absent = []
        if passed or absent:
            counts["fixed"] = close_findings(ids=[*passed, *absent], report=report, now=now, events=events)
        if resolved:
            counts["fixed"] += close_findings(ids=sorted(resolved), report=report, now=now, events=events, reason=_PASSED)
    insert_rows(FindingEvent, events)
    triaged.counts, triaged.held_closures, triaged.findings_total = counts, held, len(items)
    triaged.scopes = sorted(locked) if source in STABLE_FORMATS else []
    triaged.finding_ids = list(ids.values())
    return triaged


def close_findings(
    *, ids: Sequence[int], report: Report | None, now: dt.datetime, events: list[dict[str, Any]] | None = None, reason: str = ""
) -> int:
    """Mark active findings fixed (absent from a complete report).  Returns how many changed."""
    own_events = events is None
    events = [] if events is None else events
    closed = 0
    for chunk in chunks(list(ids)):
        active = list(Finding.objects.filter(pk__any=chunk, status__in=ACTIVE_STATUSES).values_list("id", "status"))
        if not active:
            continue
        Finding.objects.filter(pk__any=[pk for pk, _ in active]).update(status=Status.FIXED, fixed_at=now, status_changed_at=now)
        for pk, status in active:
            events.append(
                event_row(
                    pk,
                    FindingEvent.Type.FIXED,
                    report,
                    now,
                    from_status=status,
                    to_status=Status.FIXED,
                    reason=reason or _ABSENT,
                )
            )
        closed += len(active)
    if own_events:
        insert_rows(FindingEvent, events)
    return closed
