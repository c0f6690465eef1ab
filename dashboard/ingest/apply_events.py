"""Apply a batch of event reports (Falco alerts, admission denials) as one: a constant number of queries for
the whole batch instead of a few per report.

Events aggregate into findings and never close anything, so applying reports r1..rn together ends where
applying them one after another (each a batch of one; the only way events are applied) ends: a finding is created (or reopened) by
the first report that names it and at that report's time, takes its text, details and scope from the
latest one, keeps the most recent samples and counts every occurrence; "last seen" and the last report
are the latest report's.  Every report keeps its own counts (new, reopened, unchanged) and the findings
it named (event sightings for the nudges).  A report standing for several identical events (``Report.occurrences``)
counts each of its findings that many times (``_counted``).

The batch has one sender (claim.py claims only reports of the leader's sender): findings of teams it
may not change are left untouched and counted ``not_yours`` by each report naming them; a report naming nothing
else is marked ``refused`` (it changed nothing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from dashboard.db.copy_rows import insert_rows
from dashboard.ingest.apply import IngestOutcome
from dashboard.ingest.rights import SenderRights, own_image_items, report_sender_rights
from dashboard.ingest.scopes import lock_scopes
from dashboard.ingest.write import (
    PER_OCCURRENCE,
    SAMPLES_KEPT,
    Item,
    Stored,
    changed_values,
    chunks,
    creatable,
    fallback_scopes,
    image_of,
    items_of,
    new_row,
    record_occurrences,
    scope_owners,
    score_new,
    stored_findings,
    write_changed,
)
from dashboard.models import Finding, Image, Report, Status
from dashboard.services import intel, running
from dashboard.services.finding_events import events_write
from dashboard.services.images import Recorded, images_record
from dashboard.services.reopen import Reopening, findings_reopen
from scanners.base import ImageRef, ParseResult


@dataclasses.dataclass
class EventReport:
    """A locked, parsed event report of the batch."""

    report: Report
    source: str
    stream: str
    result: ParseResult


@dataclasses.dataclass
class _Merged:
    """One finding across the batch: the first and the latest report naming it (indexes in arrival order), and
    the latest report's item with the occurrences of all of them counted and their samples, newest first."""

    first: int
    last: int
    item: Item


def apply_event_reports(reports: Sequence[EventReport]) -> list[IngestOutcome]:
    """Apply event reports (in arrival order) whose rows the caller locked, inside the caller's transaction;
    one outcome per report."""
    rights = _batch_rights(reports)
    items = [_counted(items_of(e.report.team, e.source, e.stream, e.result, _override(e.report)), e.report) for e in reports]
    merged = _merge(items)
    lock_scopes({item.scope_key for named in items for item in named.values()})
    images = _record_images(reports, items)
    for event, named in zip(reports, items, strict=True):  # before scoring: findings of images seen running are born running
        running.sightings_of_report(
            items=own_image_items(named.values(), images, rights),
            source=event.source,
            team_id=event.report.team_id,
            now=event.report.observed_at,
        )
    batch = _Batch.start(reports, merged, images, rights)
    batch.create()
    batch.update_known()
    record_occurrences(
        (batch.ids[fp], item, event.report.observed_at)
        for event, named in zip(reports, items, strict=True)
        for fp, item in named.items()
        if fp in batch.ids
    )
    events_write(batch.events)
    return batch.outcomes_of(items)


@dataclasses.dataclass
class _Batch:
    """One batch's upsert: what it has read, written and counted so far."""

    reports: Sequence[EventReport]
    merged: dict[str, _Merged]
    images: dict[str, Image]
    rights: SenderRights
    known: dict[str, Stored]
    foreign: set[str]
    outcomes: list[IngestOutcome]
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    ids: dict[str, int] = dataclasses.field(default_factory=dict)
    created: set[str] = dataclasses.field(default_factory=set)
    reopened: set[str] = dataclasses.field(default_factory=set)

    @classmethod
    def start(cls, reports: Sequence[EventReport], merged: dict[str, _Merged], images: dict[str, Image], rights: SenderRights) -> _Batch:
        known = stored_findings(list(merged), with_details=True)
        foreign = {fp for fp, row in known.items() if not rights.may_change(row.team_id)}
        outcomes = [
            IngestOutcome(counts=dict.fromkeys(("new", "reopened", "unchanged", "fixed"), 0), held_closures=[], findings_total=0)
            for _ in reports
        ]
        return cls(reports, merged, images, rights, known, foreign, outcomes)

    def create(self) -> None:
        """Create the findings not stored yet that the sender may create, as of the first report naming each."""
        merged, reports, rights, by_id = self.merged, self.reports, self.rights, {image.pk: image for image in self.images.values()}
        facts: intel.Facts | None = None
        for chunk in chunks([fp for fp in merged if fp not in self.known]):
            rows = [_new_row(merged[fp], reports, self.images) for fp in chunk]
            owners = scope_owners(fallback_scopes(rows, by_id, rights))
            self.foreign.update(row["fingerprint"] for row in rows if not creatable(row, by_id.get(row["image_id"]), owners, rights))
            allowed = [row for row in rows if row["fingerprint"] not in self.foreign]
            rows, facts = score_new(allowed, facts, {fp: merged[fp].item for fp in chunk})
            for pk, fp in insert_rows(Finding, rows, unique_fields=["fingerprint"], returning=["id", "fingerprint"]):
                self.ids[fp] = pk
                self.created.add(fp)
                self.outcomes[merged[fp].first].new_ids.append(pk)

    def update_known(self) -> None:
        """Reopen or update the stored findings the sender may change (one write per set of changed columns)."""
        changed: dict[tuple[str, ...], list[Finding]] = {}
        reopening: list[Reopening] = []
        for fp, row in self.known.items():
            if fp in self.foreign:
                continue
            entry, self.ids[fp] = self.merged[fp], row.id
            first, latest = self.reports[entry.first].report, self.reports[entry.last].report
            values = changed_values(row, entry.item, event=True)
            if row.status == Status.FIXED:
                reopening.append(Reopening(row.id, row.status, first.observed_at, first))
                self.reopened.add(fp)
                self.outcomes[entry.first].reopened_ids.append(row.id)
            changed.setdefault(tuple(sorted(values)), []).append(
                Finding(pk=row.id, last_seen=max(row.last_seen, latest.observed_at), last_report=latest, **values)
            )
            if values.keys() - PER_OCCURRENCE or row.status == Status.FIXED:  # content, scope or status: triage looks again
                self.outcomes[entry.last].changed_ids.append(row.id)
        write_changed(changed)
        # Re-scored with everything the batch changed, after its triage rules (triage_rules.after_ingest).
        findings_reopen(rows=reopening, events=self.events, rescore=False)

    def outcomes_of(self, items: list[dict[str, Item]]) -> list[IngestOutcome]:
        """Each report's counts: new or reopened where it was the first to name a finding, else unchanged."""
        for index, (outcome, named) in enumerate(zip(self.outcomes, items, strict=True)):
            for fp in named:
                first_here = self.merged[fp].first == index
                kind = "new" if first_here and fp in self.created else "reopened" if first_here and fp in self.reopened else "unchanged"
                if fp in self.foreign:
                    outcome.not_yours += 1
                else:
                    outcome.counts[kind] += 1
                    if kind == "unchanged" and fp in self.ids:
                        outcome.unchanged_ids.append(self.ids[fp])
            outcome.findings_total = len(named)
            outcome.finding_ids = [self.ids[fp] for fp in named if fp in self.ids]
            outcome.refused = bool(outcome.not_yours) and not outcome.finding_ids
            if outcome.not_yours:
                outcome.counts["not_yours"] = outcome.not_yours
        return self.outcomes


def _batch_rights(reports: Sequence[EventReport]) -> SenderRights:
    """The one sender's rights (a batch of several senders is refused: its reports are then applied one by one)."""
    senders = {(e.report.token_id, e.report.submitted_by_id) for e in reports}
    if len(senders) > 1:
        raise ValueError("a batch of event reports has one sender")
    return report_sender_rights(reports[0].report)


def _counted(items: dict[str, Item], report: Report) -> dict[str, Item]:
    """A report standing for several identical events (``Report.occurrences``: a minute's repeats of one admission
    event, services/admission_repeats.py) names each of its findings that many times.  Only here: the scan path
    (apply.py) never reads it, and only Vigil sets it, on event reports."""
    if report.occurrences != 1:
        for item in items.values():
            item.count *= report.occurrences
    return items


def _override(report: Report) -> ImageRef | None:
    return ImageRef.parse(report.image_ref) if report.image_ref else None


def _merge(items: list[dict[str, Item]]) -> dict[str, _Merged]:
    merged: dict[str, _Merged] = {}
    for index, named in enumerate(items):
        for fp, item in named.items():
            entry = merged.get(fp)
            if entry is None:
                merged[fp] = _Merged(first=index, last=index, item=item)
                continue
            samples = [*item.samples, *entry.item.samples][:SAMPLES_KEPT]
            entry.last, entry.item = index, dataclasses.replace(item, count=entry.item.count + item.count, samples=samples)
    return merged


def _record_images(reports: Sequence[EventReport], items: list[dict[str, Item]]) -> dict[str, Image]:
    """Each report's images and tags (each recorded once for the batch); the report's own image."""
    images: dict[str, Image] = {}
    recorded = Recorded()
    for event, named in zip(reports, items, strict=True):
        report, override = event.report, _override(event.report)
        refs = [item.image for item in named.values() if item.image is not None]
        main = override or event.result.artifact
        if main is not None:
            refs.append(main)
        its_images = images_record(refs, report.team, event.result.labels, report.observed_at, recorded)
        images.update(its_images)
        image = its_images.get(main.name) if main is not None else None
        if image is not None and report.image_id != image.pk:
            report.image = image
        if image is not None and main is not None:
            report.image_tag, report.image_digest = main.tag[:128], main.digest[:128]
    return images


def _new_row(entry: _Merged, reports: Sequence[EventReport], images: dict[str, Image]) -> dict[str, Any]:
    """A finding born at the first report naming it, seen last at the latest."""
    first, latest = reports[entry.first], reports[entry.last].report
    row = new_row(entry.item, first.report, image_of(entry.item, images), first.stream, first.report.observed_at, first.result.labels)
    row.update(last_seen=max(latest.observed_at, first.report.observed_at), last_report_id=latest.pk)
    return row
