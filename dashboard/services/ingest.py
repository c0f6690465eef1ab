"""Apply one parsed report to the findings: bulk upsert by fingerprint and lifecycle.

Runs inside the caller's transaction with the report's lifecycle scopes
locked (see ``report_processing.report_process``).  The number of queries is constant
per batch of findings, never per finding.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from dashboard.models import (
    ACTIVE_STATUSES,
    Finding,
    FindingEvent,
    FindingOccurrence,
    Image,
    Report,
    Status,
    Team,
)
from dashboard.services import intel, risk
from dashboard.services.bulk_inserts import insert_rows
from dashboard.services.bulk_updates import bulk_update_rows
from dashboard.services.images import LAST_SEEN_STEP, Recorded, images_record
from dashboard.services.ownership import resolve_owner, rules_for
from dashboard.services.scopes import covered_scopes, explicitly_evaluated, lock_scopes, mark_applied, policy_scope_key, scope_key
from scanners.base import Finding as ParsedFinding
from scanners.base import ImageRef, ParseResult
from scanners.digest import STABLE_FORMATS
from scanners.fingerprint import make_fingerprint

#: Formats whose findings are events (aggregated, never closed by absence).
EVENT_FORMATS = frozenset({"admission-review", "falco"})
BATCH = 1000
#: Recent occurrences kept on an event finding (admission denials, runtime alerts).
SAMPLES_KEPT = 5
#: Detail keys that change with every build or tag (they live on occurrences): never a reason to rewrite a finding.
VOLATILE_DETAILS = frozenset({"target", "layer_digest", "layer_diff_id", "also_seen", "last_modified", "report", "resource_uid"})
_ABSENT = "absent from a complete report"
#: What every new occurrence of an event rewrites; not a change triage or scoring needs to look at.
_PER_OCCURRENCE = frozenset({"description", "details", "occurrences"})


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


@dataclasses.dataclass
class _Item:
    parsed: ParsedFinding
    fingerprint: str
    image: ImageRef | None
    scope_key: str
    count: int = 1
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash(_content(self), event=self.parsed.source in EVENT_FORMATS)


def _finding_scope(
    parsed: ParsedFinding, image: ImageRef | None, team: Team | None, source: str, stream: str, policy_level: set[str]
) -> str:
    policy = parsed.details.get("policy") if parsed.kind == "policy" and source not in EVENT_FORMATS else None
    if isinstance(policy, str) and policy:
        return policy_scope_key(stream=stream, source=source, policy=policy, resource=None if policy in policy_level else parsed.resource)
    return scope_key(stream=stream, source=source, image=image, resource=parsed.resource, team=team)


def _items(team: Team | None, source: str, stream: str, result: ParseResult, override: ImageRef | None) -> dict[str, _Item]:
    """Findings keyed by fingerprint; duplicates inside one report are merged and counted."""
    items: dict[str, _Item] = {}
    policy_level = {policy for resource, policy in result.evaluated_policies if resource is None}
    for parsed in result.findings:
        image, fingerprint = parsed.image, parsed.fingerprint
        if override is not None and (image is None or image == result.artifact or image.name == getattr(result.artifact, "name", None)):
            image = override
            fingerprint = make_fingerprint("image-override", override.name, parsed.fingerprint)
        item = items.get(fingerprint)
        if item is None:
            key = _finding_scope(parsed, image, team, source, stream, policy_level)
            item = items[fingerprint] = _Item(parsed=parsed, fingerprint=fingerprint, image=image, scope_key=key)
        else:
            item.count += 1
        if source in EVENT_FORMATS:
            item.samples = [_sample(parsed), *item.samples][:SAMPLES_KEPT]
    return items


def _sample(parsed: ParsedFinding) -> dict[str, Any]:
    """A small record of one event occurrence, kept on the aggregated finding."""
    resource = parsed.resource
    return {
        "occurred_at": parsed.occurred_at,
        "resource": resource.to_dict() if resource else None,
        "image": parsed.image.to_dict() if parsed.image else None,
        "title": parsed.title[:200],
    }


def _policy_of(item: _Item) -> str:
    policy = item.parsed.details.get("policy")
    return policy if isinstance(policy, str) else ""


@dataclasses.dataclass
class Batch:
    """What reports applied one after another in one transaction share (a batch of event reports): the
    scopes already locked, and the images and tags already recorded; neither needs a query again."""

    locked_scopes: set[str] = dataclasses.field(default_factory=set)
    recorded: Recorded = dataclasses.field(default_factory=Recorded)


def _image_of(item: _Item, images: dict[str, Image]) -> Image | None:
    return images.get(item.image.name) if item.image is not None else None


def _new_row(item: _Item, report: Report, image: Image | None, stream: str, now: dt.datetime, labels: dict[str, str]) -> dict[str, Any]:
    """The columns of a new finding (attname -> value) for ``insert_rows``, but for the scoring columns (``_score``)."""
    parsed = item.parsed
    owner = resolve_owner(
        report_team=report.team, image=item.image, resource=parsed.resource, labels=labels, named=report.team_named, rules=rules_for(report)
    )
    package, resource = parsed.package, parsed.resource
    return {
        "fingerprint": item.fingerprint,
        "team_id": owner.team.pk if owner.team is not None else None,
        "owner_source": owner.source,
        "owner_rule_id": owner.rule.pk if owner.rule is not None else None,
        "owner_reason": owner.reason[:300],
        "image_id": image.pk if image is not None else None,
        "kind": parsed.kind,
        "source": parsed.source,
        "stream": stream,
        "scope_key": item.scope_key,
        "rule_id": parsed.rule_id,
        "title": parsed.title,
        "description": parsed.description,
        "severity": parsed.severity,
        "status": Status.OPEN,
        "package_name": package.name[:255] if package else "",
        "package_version": package.version[:255] if package else "",
        "fixed_version": package.fixed_version[:255] if package else "",
        "package_type": package.type[:64] if package else "",
        "package_path": package.path[:1000] if package else "",
        "resource_cluster": resource.cluster[:255] if resource else "",
        "resource_namespace": resource.namespace[:255] if resource else "",
        "resource_kind": resource.kind[:100] if resource else "",
        "resource_name": resource.name[:255] if resource else "",
        "cvss": parsed.cvss,
        "cwe": parsed.cwe,
        "references": parsed.references,
        "details": _content(item)["details"],
        "content_hash": item.content_hash,
        "status_hint": parsed.status_hint[:32],
        "sla_started_on": now.date(),
        "occurrences": item.count,
        "first_seen": now,
        "last_seen": now,
        "status_changed_at": now,
        "last_report_id": report.pk,
    }


def _score(rows: list[dict[str, Any]], facts: intel.Facts | None) -> tuple[list[dict[str, Any]], intel.Facts | None]:
    """New findings are born scored (KEV, EPSS, exposure, the owner's SLA), so nothing re-scores them after insert.
    ``facts``: what scoring the report's earlier rows looked up (returned extended)."""
    if rows:
        facts = intel.facts_for(
            rule_ids=(row["rule_id"] for row in rows),
            image_ids=(row["image_id"] for row in rows),
            team_ids=(row["team_id"] for row in rows),
            facts=facts,
        )
        for row in rows:
            row.update(intel.scored(row, facts))
    return rows, facts


def _content(item: _Item, previous_details: dict[str, Any] | None = None) -> dict[str, Any]:
    parsed = item.parsed
    details = dict(parsed.details)
    if item.samples:
        older = (previous_details or {}).get("samples") or []
        details["samples"] = [*item.samples, *older][:SAMPLES_KEPT]
    return {
        "title": parsed.title,
        "description": parsed.description,
        "severity": parsed.severity,
        "cvss": parsed.cvss,
        "fixed_version": parsed.package.fixed_version[:255] if parsed.package else "",
        "package_version": parsed.package.version[:255] if parsed.package else "",
        "references": parsed.references,
        "cwe": parsed.cwe,
        "details": details,
    }


def _chunks(values: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _read_chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """Lists for one ``__any`` read each: on PostgreSQL all at once (one array parameter, one scan of the table
    or its index instead of one per thousand), elsewhere BATCH at a time (SQLite's limit on parameters)."""
    return _chunks(values, max(len(values), 1) if connection.vendor == "postgresql" else BATCH)


def content_hash(content: dict[str, Any], *, event: bool = False) -> str:
    """A finding's scanner content, as compared between reports (volatile details and event samples left out).

    For an event (a runtime alert, an admission denial) the output text and the details describe one
    occurrence (its pod, process, uuid and time): only the rest is the finding's content.
    """
    details = content["details"]
    if event:
        content = {key: value for key, value in content.items() if key not in ("description", "details")}
        details = {}
    stable = {k: v for k, v in details.items() if k not in VOLATILE_DETAILS and k != "samples"} if isinstance(details, dict) else details
    text = json.dumps({**content, "details": stable}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclasses.dataclass
class _Stored:
    """The columns of an existing finding that ingest needs (not the whole row)."""

    id: int
    status: str
    scope_key: str
    last_seen: dt.datetime
    content_hash: str
    occurrences: int
    severity: str
    details: dict[str, Any] | None


def _stored(fingerprints: Sequence[str], *, with_details: bool) -> dict[str, _Stored]:
    columns = ["fingerprint", "id", "status", "scope_key", "last_seen", "content_hash", "occurrences", "severity"]
    stored: dict[str, _Stored] = {}
    for chunk in _read_chunks(fingerprints):
        rows = Finding.objects.filter(fingerprint__any=chunk).values_list(*columns, *(["details"] if with_details else []))
        for fingerprint, pk, status, key, seen, hashed, count, severity, *details in rows:
            stored[fingerprint] = _Stored(pk, status, key, seen, hashed, count, severity, details[0] if details else None)
    return stored


def _event(finding_id: int, type_: str, report: Report | None, now: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"finding_id": finding_id, "type": type_, "report_id": report.pk if report else None, "created_at": now, **extra}


def apply_report(
    *, report: Report, source: str, stream: str, result: ParseResult, now: dt.datetime, batch: Batch | None = None
) -> IngestOutcome:
    """Upsert the report's findings and close what it no longer shows.  Caller holds the transaction.

    ``batch``: shared by reports applied one after another in the caller's transaction.
    """
    batch = batch or Batch()
    override = ImageRef.parse(report.image_ref) if report.image_ref else None
    team = report.team
    items = _items(team, source, stream, result, override)
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
    locked = scopes | {item.scope_key for item in items.values()}
    lock_scopes(locked - batch.locked_scopes)
    batch.locked_scopes |= locked
    if not events_only:  # what a repeated scan is compared with (reimports.py); events never repeat
        mark_applied(locked, report=report)

    # Open findings in the covered scopes before this report: the base for the "close more than half" rule.
    active_before: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(scopes)):
        rows = Finding.objects.filter(scope_key__in=chunk, status__in=ACTIVE_STATUSES).values_list("id", "fingerprint", "scope_key")
        active_before.update({fp: (pk, key) for pk, fp, key in rows})

    image_refs = [item.image for item in items.values() if item.image is not None]
    if override is not None:
        image_refs.append(override)
    elif result.artifact is not None:
        image_refs.append(result.artifact)
    images = images_record(image_refs, team, result.labels, now, batch.recorded)
    report_image = override or result.artifact
    main_image = images.get(report_image.name) if report_image is not None else None
    if main_image is not None and report.image_id != main_image.pk:
        report.image = main_image

    sla = risk.sla_days_for(team.sla_days if team is not None else None)
    counts = {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}
    triaged = IngestOutcome(counts=counts, held_closures=[], findings_total=0)
    events: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    known = _stored(list(items), with_details=events_only)
    seen_ids: list[int] = []
    facts: intel.Facts | None = None
    for chunk in _chunks(list(items)):
        stored = {fp: known[fp] for fp in chunk if fp in known}
        labels = result.labels
        new, facts = _score(
            [_new_row(items[fp], report, _image_of(items[fp], images), stream, now, labels) for fp in chunk if fp not in stored], facts
        )
        for pk, fp in insert_rows(Finding, new, unique_fields=["fingerprint"], returning=["id", "fingerprint"]):
            ids[fp] = pk
            triaged.new_ids.append(pk)
            events.append(_event(pk, FindingEvent.Type.CREATED, report, now, to_status=Status.OPEN))
            counts["new"] += 1
        changed: dict[tuple[str, ...], list[Finding]] = {}
        for fp, row in stored.items():
            ids[fp] = row.id
            item = items[fp]
            values: dict[str, Any] = {}
            if row.content_hash != item.content_hash:
                values.update(_content(item, row.details), content_hash=item.content_hash)
            elif events_only:  # the latest occurrence's text and details, and the recent samples
                content = _content(item, row.details)
                values.update(description=content["description"], details=content["details"])
            if row.scope_key != item.scope_key:
                values["scope_key"] = item.scope_key
            if row.status == Status.FIXED:
                severity = values.get("severity", row.severity)
                values.update(status=Status.OPEN, fixed_at=None, status_changed_at=now)
                values["due_date"] = risk.due_date(severity=severity, start=now.date(), sla_days=sla)
                events.append(_event(row.id, FindingEvent.Type.REOPENED, report, now, from_status=Status.FIXED, to_status=Status.OPEN))
                counts["reopened"] += 1
                triaged.reopened_ids.append(row.id)
            else:
                counts["unchanged"] += 1
            if events_only:
                values["occurrences"] = row.occurrences + item.count
            if values:
                # Rows are written in groups of the same changed fields, so no row gets another's columns.
                changed.setdefault(tuple(sorted(values)), []).append(
                    Finding(pk=row.id, last_seen=max(row.last_seen, now), last_report=report, **values)
                )
                if values.keys() - _PER_OCCURRENCE:  # content, scope or status: triage looks again
                    triaged.changed_ids.append(row.id)
            else:
                seen_ids.append(row.id)
        for fields, group in changed.items():
            bulk_update_rows(Finding, group, [*fields, "last_seen", "last_report"], batch_size=BATCH)
    for chunk in _read_chunks(seen_ids):
        # Unchanged findings: move "last seen" forward at most once per LAST_SEEN_STEP, so re-importing
        # the same report (CI re-runs) writes nothing.
        Finding.objects.filter(pk__any=chunk, last_seen__lt=now - LAST_SEEN_STEP).update(last_seen=now, last_report=report)
    _record_occurrences(items, ids, now)

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
    for chunk in _chunks(list(ids)):
        active = list(Finding.objects.filter(pk__any=chunk, status__in=ACTIVE_STATUSES).values_list("id", "status"))
        if not active:
            continue
        Finding.objects.filter(pk__any=[pk for pk, _ in active]).update(status=Status.FIXED, fixed_at=now, status_changed_at=now)
        for pk, status in active:
            events.append(
                _event(
                    pk,
                    FindingEvent.Type.FIXED,
                    report,
                    now,
                    from_status=status,
                    to_status=Status.FIXED,
                    reason=reason or "absent from a complete report",
                )
            )
        closed += len(active)
    if own_events:
        insert_rows(FindingEvent, events)
    return closed


def _record_occurrences(items: dict[str, _Item], ids: dict[str, int], now: dt.datetime) -> None:
    """First/last seen per tag, digest and workload; ``ids``: finding id per fingerprint."""
    wanted: dict[int, tuple[str, str, str]] = {}
    for fp, item in items.items():
        tag = item.image.tag if item.image else ""
        digest = item.image.digest if item.image else ""
        resource = item.parsed.resource
        workload = f"{resource.namespace}/{resource.kind}/{resource.name}".strip("/")[:255] if resource and resource.name else ""
        if (tag or digest or workload) and fp in ids:
            wanted[ids[fp]] = (tag[:128], digest[:128], workload)
    rows: list[dict[str, Any]] = []
    for chunk in _read_chunks(list(wanted)):
        # Occurrences seen within the last step need no write (a CI re-run of the same tag).
        fresh = set(
            FindingOccurrence.objects.filter(finding_id__any=chunk, last_seen__gte=now - LAST_SEEN_STEP).values_list(
                "finding_id", "tag", "digest", "workload"
            )
        )
        rows.extend(
            {"finding_id": pk, "tag": tag, "digest": digest, "workload": workload, "first_seen": now, "last_seen": now}
            for pk in chunk
            for tag, digest, workload in (wanted[pk],)
            if (pk, tag, digest, workload) not in fresh
        )
    insert_rows(FindingOccurrence, rows, unique_fields=["finding", "tag", "digest", "workload"], update_fields=["last_seen"])
