"""Apply one parsed report to the findings: bulk upsert by fingerprint and lifecycle.

Runs inside the caller's transaction with the report's lifecycle scopes
locked (see ``reports.report_process``).  The number of queries is constant
per batch of findings, never per finding.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings

from dashboard.models import (
    ACTIVE_STATUSES,
    Finding,
    FindingEvent,
    FindingOccurrence,
    Image,
    ImageVersion,
    Report,
    Status,
    Team,
)
from dashboard.services import risk
from dashboard.services.bulk_updates import bulk_update_rows
from dashboard.services.ownership import resolve_owner, rules_for
from dashboard.services.scopes import covered_scopes, explicitly_evaluated, lock_scopes, policy_scope_key, scope_key
from scanners.base import Finding as ParsedFinding
from scanners.base import ImageRef, ParseResult
from scanners.fingerprint import make_fingerprint

#: Formats whose findings are events (aggregated, never closed by absence).
EVENT_FORMATS = frozenset({"admission-review", "falco"})
BATCH = 1000
#: Recent occurrences kept on an event finding (admission denials, runtime alerts).
SAMPLES_KEPT = 5
#: Detail keys that change with every build or tag (they live on occurrences): never a reason to rewrite a finding.
VOLATILE_DETAILS = frozenset({"target", "layer_digest", "layer_diff_id", "also_seen", "last_modified", "report", "resource_uid"})
#: How stale "last seen" may get on an unchanged finding before a report moves it forward.
LAST_SEEN_STEP = dt.timedelta(hours=1)
#: Fields a newer report may change on an existing finding.
_CONTENT_FIELDS = ("title", "description", "severity", "cvss", "fixed_version", "package_version", "references", "cwe", "details")


@dataclasses.dataclass
class IngestOutcome:
    counts: dict[str, int]
    held_closures: list[int]
    findings_total: int
    #: For triage after ingest (issue 6): findings this report created, reopened, or rewrote.
    new_ids: list[int] = dataclasses.field(default_factory=list)
    reopened_ids: list[int] = dataclasses.field(default_factory=list)
    changed_ids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Item:
    parsed: ParsedFinding
    fingerprint: str
    image: ImageRef | None
    scope_key: str
    count: int = 1
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _finding_scope(parsed: ParsedFinding, image: ImageRef | None, report: Report, source: str, stream: str, policy_level: set[str]) -> str:
    policy = parsed.details.get("policy") if parsed.kind == "policy" and source not in EVENT_FORMATS else None
    if isinstance(policy, str) and policy:
        return policy_scope_key(stream=stream, source=source, policy=policy, resource=None if policy in policy_level else parsed.resource)
    return scope_key(stream=stream, source=source, image=image, resource=parsed.resource, team=report.team)


def _items(report: Report, source: str, stream: str, result: ParseResult, override: ImageRef | None) -> dict[str, _Item]:
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
            key = _finding_scope(parsed, image, report, source, stream, policy_level)
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


def _images(refs: Iterable[ImageRef], team: Team | None, labels: dict[str, str], now: dt.datetime) -> dict[str, Image]:
    by_name = {ref.name: ref for ref in refs}
    if not by_name:
        return {}
    keys = {(ref.registry, ref.repository) for ref in by_name.values()}
    Image.objects.bulk_create(
        [Image(registry=r, repository=p, team=team, labels=labels, first_seen=now, last_seen=now) for r, p in keys],
        ignore_conflicts=True,
    )
    images: dict[str, Image] = {}
    registries = {r for r, _ in keys}
    for image in Image.objects.filter(registry__in=registries, repository__in={p for _, p in keys}):
        if (image.registry, image.repository) in keys:
            images[image.name] = image
    stale = [image.pk for image in images.values() if image.last_seen < now]
    Image.objects.filter(pk__in=stale).update(last_seen=now)
    if team is not None:
        Image.objects.filter(pk__in=[image.pk for image in images.values()], team__isnull=True).update(team=team)
    versions = {(images[ref.name].pk, ref.tag, ref.digest) for ref in by_name.values() if ref.tag or ref.digest}
    for pk, tag, digest in versions:
        ImageVersion.objects.update_or_create(
            image_id=pk, tag=tag, digest=digest, defaults={"last_seen": now}, create_defaults={"first_seen": now, "last_seen": now}
        )
    return images


def _image_of(item: _Item, images: dict[str, Image]) -> Image | None:
    return images.get(item.image.name) if item.image is not None else None


def _sla_days(team: Team | None) -> dict[str, int]:
    days = dict(settings.VIGIL_SLA_DAYS)
    if team is not None:
        days.update({k: int(v) for k, v in (team.sla_days or {}).items()})
    return days


def _new_finding(
    item: _Item, report: Report, image: Image | None, stream: str, now: dt.datetime, sla: dict[str, int], labels: dict[str, str]
) -> Finding:
    parsed = item.parsed
    owner = resolve_owner(
        report_team=report.team, image=item.image, resource=parsed.resource, labels=labels, named=report.team_named, rules=rules_for(report)
    )
    package, resource = parsed.package, parsed.resource
    exposed = stream in ("admission", "runtime")
    # The score's parts as triage shows them; triage_rules.after_ingest adds KEV, EPSS and exposure when they apply.
    parts = risk.risk_parts(
        severity=parsed.severity,
        cvss=parsed.cvss,
        epss=None,
        kev=False,
        fix_available=bool(package and package.fixed_version),
        exposed=exposed,
    )
    return Finding(
        fingerprint=item.fingerprint,
        team=owner.team,
        owner_source=owner.source,
        owner_rule=owner.rule,
        owner_reason=owner.reason[:300],
        image=image,
        kind=parsed.kind,
        source=parsed.source,
        stream=stream,
        scope_key=item.scope_key,
        rule_id=parsed.rule_id,
        title=parsed.title,
        description=parsed.description,
        severity=parsed.severity,
        status=Status.OPEN,
        package_name=package.name[:255] if package else "",
        package_version=package.version[:255] if package else "",
        fixed_version=package.fixed_version[:255] if package else "",
        package_type=package.type[:64] if package else "",
        package_path=package.path[:1000] if package else "",
        resource_cluster=resource.cluster[:255] if resource else "",
        resource_namespace=resource.namespace[:255] if resource else "",
        resource_kind=resource.kind[:100] if resource else "",
        resource_name=resource.name[:255] if resource else "",
        cvss=parsed.cvss,
        cwe=parsed.cwe,
        references=parsed.references,
        details=_content(item)["details"],
        status_hint=parsed.status_hint[:32],
        risk_score=risk.score_of(parts),
        risk_parts=parts,
        exposed=exposed,
        sla_started_on=now.date(),
        occurrences=item.count,
        first_seen=now,
        last_seen=now,
        status_changed_at=now,
        due_date=risk.due_date(severity=parsed.severity, start=now.date(), sla_days=sla),
        last_report=report,
    )


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


def _differs(field: str, stored: Any, incoming: Any) -> bool:
    if field == "details" and isinstance(stored, dict) and isinstance(incoming, dict):
        return {k: v for k, v in stored.items() if k not in VOLATILE_DETAILS} != {
            k: v for k, v in incoming.items() if k not in VOLATILE_DETAILS
        }
    return bool(stored != incoming)


def _chunks(values: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def apply_report(*, report: Report, source: str, stream: str, result: ParseResult, now: dt.datetime) -> IngestOutcome:
    """Upsert the report's findings and close what it no longer shows.  Caller holds the transaction."""
    override = ImageRef.parse(report.image_ref) if report.image_ref else None
    items = _items(report, source, stream, result, override)
    events_only = source in EVENT_FORMATS
    scopes = (
        set()
        if events_only
        else covered_scopes(
            team=report.team,
            source=source,
            stream=stream,
            result=result,
            artifact=override or result.artifact,
            item_scopes=[(item.scope_key, _policy_of(item)) for item in items.values()],
        )
    )
    lock_scopes(scopes | {item.scope_key for item in items.values()})

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
    images = _images(image_refs, report.team, result.labels, now)
    report_image = override or result.artifact
    main_image = images.get(report_image.name) if report_image is not None else None
    if main_image is not None and report.image_id != main_image.pk:
        report.image = main_image

    sla = _sla_days(report.team)
    counts = {"new": 0, "reopened": 0, "unchanged": 0, "fixed": 0}
    triaged = IngestOutcome(counts=counts, held_closures=[], findings_total=0)
    events: list[FindingEvent] = []
    fingerprints = list(items)
    for chunk in _chunks(fingerprints):
        existing = {f.fingerprint: f for f in Finding.objects.filter(fingerprint__in=chunk)}
        new = [
            _new_finding(items[fp], report, _image_of(items[fp], images), stream, now, sla, result.labels)
            for fp in chunk
            if fp not in existing
        ]
        if new:
            Finding.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
            created = Finding.objects.filter(fingerprint__in=[f.fingerprint for f in new], last_report=report, first_seen=now)
            for pk in created.values_list("id", flat=True):
                triaged.new_ids.append(pk)
                events.append(
                    FindingEvent(finding_id=pk, type=FindingEvent.Type.CREATED, to_status=Status.OPEN, report=report, created_at=now)
                )
            counts["new"] += len(new)
        changed: list[Finding] = []
        seen_ids: list[int] = []
        for fp, finding in existing.items():
            item = items[fp]
            content = _content(item, finding.details)
            dirty = False
            for field, value in content.items():
                if _differs(field, getattr(finding, field), value):
                    setattr(finding, field, value)
                    dirty = True
            if finding.scope_key != item.scope_key:
                finding.scope_key = item.scope_key
                dirty = True
            if finding.status == Status.FIXED:
                finding.status = Status.OPEN
                finding.fixed_at = None
                finding.status_changed_at = now
                finding.due_date = risk.due_date(severity=finding.severity, start=now.date(), sla_days=sla)
                events.append(
                    FindingEvent(
                        finding_id=finding.pk,
                        type=FindingEvent.Type.REOPENED,
                        from_status=Status.FIXED,
                        to_status=Status.OPEN,
                        report=report,
                        created_at=now,
                    )
                )
                counts["reopened"] += 1
                triaged.reopened_ids.append(finding.pk)
                dirty = True
            else:
                counts["unchanged"] += 1
            if events_only:
                finding.occurrences += item.count
                dirty = True
            if dirty:
                finding.last_seen = max(finding.last_seen, now)
                finding.last_report = report
                changed.append(finding)
            else:
                seen_ids.append(finding.pk)
        if changed:
            triaged.changed_ids.extend(f.pk for f in changed)
            bulk_update_rows(
                Finding,
                changed,
                [
                    *_CONTENT_FIELDS,
                    "scope_key",
                    "status",
                    "fixed_at",
                    "status_changed_at",
                    "due_date",
                    "occurrences",
                    "last_seen",
                    "last_report",
                ],
                batch_size=BATCH,
            )
        if seen_ids:
            # Unchanged findings: move "last seen" forward at most once per LAST_SEEN_STEP, so re-importing
            # the same report (CI re-runs) writes nothing.
            stale = now - LAST_SEEN_STEP
            Finding.objects.filter(pk__in=seen_ids, last_seen__lt=stale).update(last_seen=now, last_report=report)
    _record_occurrences(items, now)

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
    FindingEvent.objects.bulk_create(events, batch_size=BATCH)
    triaged.counts, triaged.held_closures, triaged.findings_total = counts, held, len(items)
    return triaged


def close_findings(
    *, ids: Sequence[int], report: Report | None, now: dt.datetime, events: list[FindingEvent] | None = None, reason: str = ""
) -> int:
    """Mark active findings fixed (absent from a complete report).  Returns how many changed."""
    own_events = events is None
    events = [] if events is None else events
    closed = 0
    for chunk in _chunks(list(ids)):
        active = list(Finding.objects.filter(pk__in=chunk, status__in=ACTIVE_STATUSES).values_list("id", "status"))
        if not active:
            continue
        Finding.objects.filter(pk__in=[pk for pk, _ in active]).update(status=Status.FIXED, fixed_at=now, status_changed_at=now)
        for pk, status in active:
            events.append(
                FindingEvent(
                    finding_id=pk,
                    type=FindingEvent.Type.FIXED,
                    from_status=status,
                    to_status=Status.FIXED,
                    report=report,
                    reason=reason or "absent from a complete report",
                    created_at=now,
                )
            )
        closed += len(active)
    if own_events:
        FindingEvent.objects.bulk_create(events, batch_size=BATCH)
    return closed


def _record_occurrences(items: dict[str, _Item], now: dt.datetime) -> None:
    wanted: dict[str, tuple[str, str, str]] = {}
    for fp, item in items.items():
        tag = item.image.tag if item.image else ""
        digest = item.image.digest if item.image else ""
        resource = item.parsed.resource
        workload = f"{resource.namespace}/{resource.kind}/{resource.name}".strip("/")[:255] if resource and resource.name else ""
        if tag or digest or workload:
            wanted[fp] = (tag[:128], digest[:128], workload)
    fps = list(wanted)
    for chunk in _chunks(fps):
        ids = dict(Finding.objects.filter(fingerprint__in=chunk).values_list("fingerprint", "id"))
        # Occurrences seen within the last step need no write (a CI re-run of the same tag).
        fresh = set(
            FindingOccurrence.objects.filter(finding_id__in=list(ids.values()), last_seen__gte=now - LAST_SEEN_STEP).values_list(
                "finding_id", "tag", "digest", "workload"
            )
        )
        rows = [
            FindingOccurrence(
                finding_id=ids[fp], tag=wanted[fp][0], digest=wanted[fp][1], workload=wanted[fp][2], first_seen=now, last_seen=now
            )
            for fp in chunk
            if fp in ids and (ids[fp], *wanted[fp]) not in fresh
        ]
        FindingOccurrence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["finding", "tag", "digest", "workload"],
            update_fields=["last_seen"],
            batch_size=BATCH,
        )
