"""Apply one parsed report to the findings: bulk upsert by fingerprint and lifecycle (rows: write.py).

Runs inside the caller's transaction with the report's lifecycle scopes
locked (see ``claim.report_process``).  The number of queries is constant
per batch of findings, never per finding.  A report changes only the findings its
sender may change (``rights``): another team's in its scope are left alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from dashboard.db.copy_rows import insert_rows
from dashboard.ingest import unchanged
from dashboard.ingest.rights import ForeignScopeError, SenderRights, own_image_items, report_sender_rights
from dashboard.ingest.scopes import covered_scopes, explicitly_evaluated, lock_scopes, mark_applied
from dashboard.ingest.write import (
    EVENT_FORMATS,
    PER_OCCURRENCE,
    Item,
    Stored,
    changed_values,
    chunks,
    creatable,
    fallback_scopes,
    image_of,
    items_of,
    new_row,
    read_chunks,
    record_occurrences,
    scope_owners,
    score_new,
    stored_findings,
    write_changed,
)
from dashboard.models import ACTIVE_STATUSES, Finding, FindingEvent, Image, Report, Status, Team
from dashboard.services import intel, running
from dashboard.services.finding_events import event_row, events_write
from dashboard.services.images import LAST_SEEN_STEP, Recorded, images_record
from dashboard.services.reopen import Reopening, findings_reopen
from scanners.base import ImageRef, ParseResult
from scanners.digest import STABLE_FORMATS

__all__ = ["EVENT_FORMATS", "IngestOutcome", "apply_report", "close_findings", "report_scopes"]

_ABSENT = "absent from a complete report"
_PASSED = "evaluated again and passed"


@dataclasses.dataclass
class IngestOutcome:
    counts: dict[str, int]
    held_closures: list[int]
    findings_total: int
    #: For triage after ingest: findings this report created, reopened, or whose content changed.
    new_ids: list[int] = dataclasses.field(default_factory=list)
    reopened_ids: list[int] = dataclasses.field(default_factory=list)
    changed_ids: list[int] = dataclasses.field(default_factory=list)
    #: Findings the report named that were already stored and not fixed (its "unchanged" outcome).
    unchanged_ids: list[int] = dataclasses.field(default_factory=list)
    #: Every finding the report named (for event sightings: nudges.sightings_record).
    finding_ids: list[int] = dataclasses.field(default_factory=list)
    #: The scopes a snapshot scan spoke for, kept on the report for recognising a repeat (repeat.py).
    scopes: list[str] = dataclasses.field(default_factory=list)
    #: Findings of teams the sender may not change that the report named or covered, left untouched (and new
    #: ones it would have created for such a team).
    not_yours: int = 0
    #: The report was about nothing but such findings (an event report of a batch: it changed nothing).
    refused: bool = False


def _policy_of(item: Item) -> str:
    policy = item.parsed.details.get("policy")
    return policy if isinstance(policy, str) else ""


def report_scopes(
    *, team: Team | None, source: str, stream: str, result: ParseResult, override: ImageRef | None, cluster: str = ""
) -> tuple[dict[str, Item], set[str]]:
    """The report's items (by fingerprint) and the lifecycle scopes it closes by absence in (none for events)."""
    items = items_of(team, source, stream, result, override, cluster=cluster)
    if source in EVENT_FORMATS:
        return items, set()
    item_scopes = [(item.scope_key, _policy_of(item)) for item in items.values()]
    artifact = override or result.artifact
    return items, covered_scopes(team=team, source=source, stream=stream, result=result, artifact=artifact, item_scopes=item_scopes)


def apply_report(*, report: Report, source: str, stream: str, result: ParseResult, now: dt.datetime) -> IngestOutcome:
    """Upsert the report's findings and close what it no longer shows.  Caller holds the transaction.

    Only findings the report's sender may change are touched (rights.py); the others in its scope are
    counted ``not_yours``, and a report about nothing else raises ``ForeignScopeError`` (the caller rolls back).
    Snapshot reports only: every event report, a lone one too, is applied by ``apply_events`` (a batch of one).
    """
    if source in EVENT_FORMATS:
        raise ValueError(f"{source} reports are events: apply_events.apply_event_reports applies them")
    override = ImageRef.parse(report.image_ref) if report.image_ref else None
    rights = report_sender_rights(report)
    items, scopes, locked = _items_and_scopes(report, source, stream, result, override)
    resolved = _resolved(result)
    unlocked = (scopes | {item.scope_key for item in items.values()} | {key for key, _ in resolved.values()}) - locked
    if unlocked:
        lock_scopes(unlocked)
    locked |= unlocked
    mark_applied(locked, report=report)  # what a repeated scan is compared with (repeat.py)
    active_before = _active_in(scopes)
    images = _record_images(report, items, override, result, rights, source, now)
    run = _Run.start(report=report, stream=stream, now=now, items=items, images=images, rights=rights)
    for chunk in chunks(list(items)):
        run.insert_new(chunk, result.labels)
        run.update_stored(chunk)
    run.touch_seen()
    record_occurrences((run.ids[fp], item, now) for fp, item in items.items() if fp in run.ids)
    triaged = run.triaged
    _close_absent(report, stream, source, result, now, items, active_before, resolved, rights, run.foreign, triaged, run.events)
    triaged.not_yours += len(run.foreign)
    events_write(run.events)
    triaged.findings_total = len(items)
    triaged.scopes = sorted(locked) if source in STABLE_FORMATS else []
    triaged.finding_ids = list(run.ids.values())
    counts = triaged.counts
    if triaged.not_yours and not run.ids and not triaged.held_closures and not counts["fixed"] and not _owns_any(active_before, rights):
        raise ForeignScopeError()  # about nothing but findings of teams the sender may not change
    if triaged.not_yours:
        counts["not_yours"] = triaged.not_yours
    return triaged


def _items_and_scopes(
    report: Report, source: str, stream: str, result: ParseResult, override: ImageRef | None
) -> tuple[dict[str, Item], set[str], set[str]]:
    """The report's items, the scopes it covers, and those of its scopes already locked: all of them when its
    entries are recognised as unchanged before they are normalised (unchanged.py), else none yet."""
    if unchanged.applies(result):
        return unchanged.pending_items(report=report, source=source, stream=stream, result=result, override=override)
    items, scopes = report_scopes(team=report.team, source=source, stream=stream, result=result, override=override, cluster=report.cluster)
    return items, scopes, set()


def _resolved(result: ParseResult) -> dict[int, tuple[str, int | None]]:
    """Open findings the report evaluated again and found passing (a lone policy result): fixed, their scopes locked too."""
    if not result.resolved:
        return {}
    passing = Finding.objects.filter(fingerprint__any=result.resolved, status__in=ACTIVE_STATUSES)
    return {pk: (key, team_id) for pk, key, team_id in passing.values_list("id", "scope_key", "team_id")}


def _active_in(scopes: set[str]) -> dict[str, tuple[int, str, int | None]]:
    """Open findings in the covered scopes before this report: the base for the "close more than half" rule."""
    active_before: dict[str, tuple[int, str, int | None]] = {}
    for chunk in chunks(sorted(scopes)):
        active = Finding.objects.filter(scope_key__in=chunk, status__in=ACTIVE_STATUSES)
        active_before.update({fp: (pk, key, team) for pk, fp, key, team in active.values_list("id", "fingerprint", "scope_key", "team_id")})
    return active_before


def _record_images(
    report: Report,
    items: dict[str, Item],
    override: ImageRef | None,
    result: ParseResult,
    rights: SenderRights,
    source: str,
    now: dt.datetime,
) -> dict[str, Image]:
    """Record the images the report names, their sightings, and the report's own image on its row (not saved)."""
    images = images_record(_image_refs(items, override, result), report.team, result.labels, now, Recorded())
    # Before scoring: a finding of an image this report sees running is born running.
    running.sightings_of_report(items=own_image_items(items.values(), images, rights), source=source, team_id=report.team_id, now=now)
    report_image = override or result.artifact
    main_image = images.get(report_image.name) if report_image is not None else None
    if main_image is not None and report.image_id != main_image.pk:
        report.image = main_image
    if main_image is not None and report_image is not None:
        report.image_tag, report.image_digest = report_image.tag[:128], report_image.digest[:128]
    return images


@dataclasses.dataclass
class _Run:
    """One report's upsert, chunk by chunk: what it has read, written and counted so far."""

    report: Report
    stream: str
    now: dt.datetime
    items: dict[str, Item]
    images: dict[str, Image]
    rights: SenderRights
    known: dict[str, Stored]
    foreign: set[int]
    triaged: IngestOutcome
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    ids: dict[str, int] = dataclasses.field(default_factory=dict)
    seen_ids: list[int] = dataclasses.field(default_factory=list)
    facts: intel.Facts | None = None

    @classmethod
    def start(
        cls,
        *,
        report: Report,
        stream: str,
        now: dt.datetime,
        items: dict[str, Item],
        images: dict[str, Image],
        rights: SenderRights,
    ) -> _Run:
        known = {fp: item.stored for fp, item in items.items() if item.stored is not None}
        known.update(stored_findings([fp for fp, item in items.items() if item.stored is None], with_details=False))
        foreign = {row.id for row in known.values() if not rights.may_change(row.team_id)}
        triaged = IngestOutcome(counts={"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}, held_closures=[], findings_total=0)
        return cls(report, stream, now, items, images, rights, known, foreign, triaged)

    def insert_new(self, chunk: Sequence[str], labels: dict[str, str]) -> None:
        """Create the chunk's findings not stored yet that the sender may create."""
        items, report, now, by_id = self.items, self.report, self.now, {image.pk: image for image in self.images.values()}
        rows = [
            new_row(items[fp], report, image_of(items[fp], self.images), self.stream, now, labels) for fp in chunk if fp not in self.known
        ]
        owners = scope_owners(fallback_scopes(rows, by_id, self.rights))
        allowed = [row for row in rows if creatable(row, by_id.get(row["image_id"]), owners, self.rights)]
        self.triaged.not_yours += len(rows) - len(allowed)
        new, self.facts = score_new(allowed, self.facts, items)
        for pk, fp in insert_rows(Finding, new, unique_fields=["fingerprint"], returning=["id", "fingerprint"]):
            self.ids[fp] = pk
            self.triaged.new_ids.append(pk)
            self.triaged.counts["new"] += 1

    def update_stored(self, chunk: Sequence[str]) -> None:
        """Reopen, update or just count the chunk's stored findings the sender may change."""
        triaged, counts, report, now = self.triaged, self.triaged.counts, self.report, self.now
        stored = {fp: self.known[fp] for fp in chunk if fp in self.known and self.known[fp].id not in self.foreign}
        changed: dict[tuple[str, ...], list[Finding]] = {}
        reopening: list[Reopening] = []
        for fp, row in stored.items():
            self.ids[fp] = row.id
            item = self.items[fp]
            values = changed_values(row, item, event=False)
            if row.status == Status.FIXED:
                reopening.append(Reopening(row.id, row.status, now, report))
                counts["reopened"] += 1
                triaged.reopened_ids.append(row.id)
            else:
                counts["unchanged"] += 1
                triaged.unchanged_ids.append(row.id)
            if values or row.status == Status.FIXED:
                if values.keys() - PER_OCCURRENCE or row.status == Status.FIXED:  # content, scope or status: triage looks again
                    triaged.changed_ids.append(row.id)
            elif not self._seen_again(row, item.entry_hash):
                continue
            if item.entry_hash != row.entry_hash and item.entry_hash:
                values["entry_hash"] = item.entry_hash  # a row written anyway keeps its entry's latest digest
            changed.setdefault(tuple(sorted(values)), []).append(
                Finding(pk=row.id, last_seen=max(row.last_seen, now), last_report=report, **values)
            )
        write_changed(changed)
        # Re-scored with everything the report changed, after its triage rules (triage_rules.after_ingest).
        findings_reopen(rows=reopening, events=self.events, rescore=False)

    def _seen_again(self, row: Stored, digest: str) -> bool:
        """An unchanged finding: written only when "last seen" moves (at most once per LAST_SEEN_STEP: touch_seen,
        or here, with a digest it does not have yet, e.g. the first scans after a deploy); True if written here.
        Never a write for the digest alone: every write of a finding rewrites its row and every index of it."""
        if digest and row.entry_hash != digest and row.last_seen < self.now - LAST_SEEN_STEP:
            return True
        self.seen_ids.append(row.id)
        return False

    def touch_seen(self) -> None:
        """Unchanged findings: move "last seen" forward at most once per LAST_SEEN_STEP, so re-importing
        the same report (CI re-runs) writes nothing."""
        for chunk in read_chunks(self.seen_ids):
            Finding.objects.filter(pk__any=chunk, last_seen__lt=self.now - LAST_SEEN_STEP).update(
                last_seen=self.now, last_report=self.report
            )


def _image_refs(items: dict[str, Item], override: ImageRef | None, result: ParseResult) -> list[ImageRef]:
    refs = [item.image for item in items.values() if item.image is not None]
    if override is not None:
        refs.append(override)
    elif result.artifact is not None:
        refs.append(result.artifact)
    return refs


def _owns_any(active_before: dict[str, tuple[int, str, int | None]], rights: SenderRights) -> bool:
    return any(rights.may_change(team_id) for _, _, team_id in active_before.values())


def _close_absent(
    report: Report,
    stream: str,
    source: str,
    result: ParseResult,
    now: dt.datetime,
    items: dict[str, Item],
    active_before: dict[str, tuple[int, str, int | None]],
    resolved: dict[int, tuple[str, int | None]],
    rights: SenderRights,
    foreign: set[int],
    outcome: IngestOutcome,
    events: list[dict[str, Any]],
) -> None:
    """Close what the report no longer lists (or evaluated as passing), of the sender's findings only; the
    others' active findings of the scope are added to ``foreign``.

    A policy the report explicitly evaluated on a resource (pass/skip) is positive evidence of a fix;
    everything else missing is closed by absence, which the "more than half" rule guards.  The rule counts
    the sender's own findings of the scope: another team's are never closed nor held, so reporting a
    shrinking part of them (7 of 12, then 4, then 2) changes nothing.
    """
    evaluated = explicitly_evaluated(stream, source, result)
    mine = {fp: (pk, key) for fp, (pk, key, team_id) in active_before.items() if rights.may_change(team_id)}
    foreign |= {pk for pk, _, team_id in active_before.values() if not rights.may_change(team_id)}
    missing = [(pk, key) for fp, (pk, key) in mine.items() if fp not in items]
    passed = [pk for pk, key in missing if key in evaluated]
    absent = [pk for pk, key in missing if key not in evaluated]
    if absent and len(absent) * 2 > len(mine):
        outcome.held_closures = sorted(absent)
        absent = []
    counts = outcome.counts
    if passed or absent:
        counts["fixed"] = close_findings(ids=[*passed, *absent], report=report, now=now, events=events)
    passing = sorted(pk for pk, (_, team_id) in resolved.items() if rights.may_change(team_id))
    foreign |= {pk for pk, (_, team_id) in resolved.items() if not rights.may_change(team_id)}
    if passing:
        counts["fixed"] += close_findings(ids=passing, report=report, now=now, events=events, reason=_PASSED)


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
                    finding_id=pk,
                    type=FindingEvent.Type.FIXED,
                    report=report,
                    now=now,
                    from_status=status,
                    to_status=Status.FIXED,
                    reason=reason or _ABSENT,
                )
            )
        closed += len(active)
    if own_events:
        events_write(events)
    return closed
