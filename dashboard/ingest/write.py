"""What a parsed report's findings become in the database, shared by ``ingest`` (one report) and
``apply_events`` (a batch of event reports applied as one): items keyed by fingerprint, the rows of new
findings (born scored), the stored columns a re-import compares, event rows and occurrences.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.db import connection

from dashboard.db.copy_rows import insert_rows
from dashboard.db.update_values import bulk_update_rows
from dashboard.ingest.rights import SenderRights
from dashboard.ingest.scopes import policy_scope_key, scope_key
from dashboard.models import Finding, FindingOccurrence, Image, OwnerSource, Report, Status, Team
from dashboard.services import intel
from dashboard.services.images import LAST_SEEN_STEP
from dashboard.services.ownership import resolve_owner, rules_for
from scanners import registry
from scanners.base import Finding as ParsedFinding
from scanners.base import ImageRef, ParseResult, ResourceRef
from scanners.entries import Entry
from scanners.fingerprint import make_fingerprint

#: Formats whose findings are events (aggregated, never closed by absence): declared by each parser.
EVENT_FORMATS = registry.EVENT_FORMATS

BATCH = 1000

#: What every new occurrence of an event rewrites; not a change triage or scoring needs to look at.
PER_OCCURRENCE = frozenset({"description", "details", "occurrences"})
#: Recent occurrences kept on an event finding (admission denials, runtime alerts).
SAMPLES_KEPT = 5

#: Detail keys that change with every build or tag (they live on occurrences): never a reason to rewrite a finding.
VOLATILE_DETAILS = frozenset({"target", "layer_digest", "layer_diff_id", "also_seen", "last_modified", "report", "resource_uid"})


@dataclasses.dataclass
class Item:
    """One finding a report names: normalised (``finding``), or an entry of a re-scan recognised as unchanged
    (``entry``, unchanged.py), normalised only if something asks for ``parsed``."""

    fingerprint: str
    image: ImageRef | None
    scope_key: str
    count: int = 1
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finding: ParsedFinding | None = None
    entry: Entry | None = None
    #: What ``Finding.entry_hash`` holds for it (``stored_digest``); "" when the parser offers no digest.
    entry_hash: str = ""
    #: Its stored finding, when it was read already (with the digests of the report's scopes, unchanged.py).
    stored: Stored | None = None

    @property
    def parsed(self) -> ParsedFinding:
        if self.finding is None:
            built = self.entry.build() if self.entry is not None else None
            if built is None:
                raise ValueError(f"item {self.fingerprint} has neither a finding nor an entry that builds one")
            self.finding = built
        return self.finding

    @property
    def resource(self) -> ResourceRef | None:
        return self.entry.resource if self.finding is None and self.entry is not None else self.parsed.resource

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash(content_of(self), event=self.parsed.source in EVENT_FORMATS)


def _code_version() -> bytes:
    """A hash of this module's source: what a parsed finding becomes as a row is decided here (``new_row``,
    ``content_of``, ``content_hash``), so a change here makes every stored digest unknown, as a parser change does
    (scanners/entries.py), and the first scan of each scope after the deploy takes the full path."""
    try:
        return hashlib.blake2b(Path(__file__).read_bytes(), digest_size=16).digest()
    except OSError:
        return b""  # source not readable: no digest is stored, nothing is taken as unchanged


_CODE_VERSION = _code_version()


def stored_digest(digest: str, *, override: str = "", cluster: str = "") -> str:
    """What ``Finding.entry_hash`` holds for an entry's digest: salted with this module's source, and with what the
    report adds to the fingerprint (the ``image`` override it applied, the sender's cluster).  "" for no digest."""
    if not digest or not _CODE_VERSION:
        return ""
    return hashlib.blake2b(f"{override}\0{cluster}\0{digest}".encode(), key=_CODE_VERSION, digest_size=16).hexdigest()


def overridden(image: ImageRef | None, override: ImageRef | None, artifact: ImageRef | None) -> bool:
    """Whether the report's ``image`` override replaces this image (the report's own image, or none)."""
    return override is not None and (image is None or image == artifact or image.name == getattr(artifact, "name", None))


def _finding_scope(
    parsed: ParsedFinding, image: ImageRef | None, team: Team | None, source: str, stream: str, policy_level: set[str]
) -> str:
    policy = parsed.details.get("policy") if parsed.kind == "policy" and source not in EVENT_FORMATS else None
    if isinstance(policy, str) and policy:
        return policy_scope_key(stream=stream, source=source, policy=policy, resource=None if policy in policy_level else parsed.resource)
    return scope_key(stream=stream, source=source, image=image, resource=parsed.resource, team=team)


def items_of(
    team: Team | None, source: str, stream: str, result: ParseResult, override: ImageRef | None, *, cluster: str = ""
) -> dict[str, Item]:
    """Findings keyed by fingerprint; duplicates inside one report are merged and counted."""
    items: dict[str, Item] = {}
    policy_level = {policy for resource, policy in result.evaluated_policies if resource is None}
    for parsed in result.findings:
        add_item(
            items,
            parsed,
            team=team,
            source=source,
            stream=stream,
            result=result,
            override=override,
            cluster=cluster,
            policy_level=policy_level,
        )
    return items


def add_item(
    items: dict[str, Item],
    parsed: ParsedFinding,
    *,
    team: Team | None,
    source: str,
    stream: str,
    result: ParseResult,
    override: ImageRef | None,
    cluster: str,
    policy_level: set[str],
) -> None:
    """Add a normalised finding to ``items`` under its fingerprint (the override's, when it applies), or count it again."""
    image, fingerprint = parsed.image, parsed.fingerprint
    applied = overridden(image, override, result.artifact)
    if applied and override is not None:
        image = override
        fingerprint = make_fingerprint("image-override", override.name, parsed.fingerprint)
    item = items.get(fingerprint)
    if item is None:
        key = _finding_scope(parsed, image, team, source, stream, policy_level)
        digest = stored_digest(parsed.entry_hash, override=override.name if applied and override else "", cluster=cluster)
        item = items[fingerprint] = Item(fingerprint=fingerprint, image=image, scope_key=key, finding=parsed, entry_hash=digest)
    else:
        item.count += 1
        item.entry_hash = ""  # several findings of the report made it
    if source in EVENT_FORMATS:
        item.samples = [_sample(parsed), *item.samples][:SAMPLES_KEPT]


def _sample(parsed: ParsedFinding) -> dict[str, Any]:
    """A small record of one event occurrence, kept on the aggregated finding."""
    resource = parsed.resource
    return {
        "occurred_at": parsed.occurred_at,
        "resource": resource.to_dict() if resource else None,
        "image": parsed.image.to_dict() if parsed.image else None,
        "title": parsed.title[:200],
    }


def image_of(item: Item, images: dict[str, Image]) -> Image | None:
    return images.get(item.image.name) if item.image is not None else None


def new_row(item: Item, report: Report, image: Image | None, stream: str, now: dt.datetime, labels: dict[str, str]) -> dict[str, Any]:
    """The columns of a new finding (attname -> value) for ``insert_rows``, but for the scoring columns (``score_new``)."""
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
        "details": content_of(item)["details"],
        "content_hash": item.content_hash,
        "entry_hash": item.entry_hash,
        "status_hint": parsed.status_hint[:32],
        "sla_started_on": now.date(),
        "occurrences": item.count,
        "first_seen": now,
        "last_seen": now,
        "status_changed_at": now,
        "last_report_id": report.pk,
        "first_report_id": report.pk,
    }


def score_new(
    rows: list[dict[str, Any]], facts: intel.Facts | None, items: dict[str, Item] | None = None
) -> tuple[list[dict[str, Any]], intel.Facts | None]:
    """New findings are born scored (KEV, EPSS, running, the owner's SLA), so nothing re-scores them after insert.
    ``facts``: what scoring the report's earlier rows looked up (returned extended); ``items``: the items by
    fingerprint, whose image version says whether the new finding runs."""
    if rows:
        facts = intel.facts_for(
            rule_ids=(row["rule_id"] for row in rows),
            image_ids=(row["image_id"] for row in rows),
            team_ids=(row["team_id"] for row in rows),
            facts=facts,
        )
        for row in rows:
            item = items.get(row["fingerprint"]) if items is not None else None
            image = item.image if item is not None else None
            row.update(intel.scored(row, facts, [(image.tag, image.digest)] if image is not None else ()))
    return rows, facts


def content_of(item: Item, previous_details: dict[str, Any] | None = None) -> dict[str, Any]:
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


def chunks(values: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def read_chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """Lists for one ``__any`` read each: on PostgreSQL all at once (one array parameter, one scan of the table
    or its index instead of one per thousand), elsewhere BATCH at a time (SQLite's limit on parameters)."""
    return chunks(values, max(len(values), 1) if connection.vendor == "postgresql" else BATCH)


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
class Stored:
    """The columns of an existing finding that ingest needs (not the whole row)."""

    id: int
    status: str
    scope_key: str
    last_seen: dt.datetime
    content_hash: str
    occurrences: int
    severity: str
    details: dict[str, Any] | None
    #: The owning team (None: unowned): a sender changes only the findings it may (rights.py).
    team_id: int | None = None
    #: The digest of the entry the stored content was normalised from (``stored_digest``; "" when none).
    entry_hash: str = ""


#: The columns of ``Stored``, as ``stored_rows`` reads them.
STORED_COLUMNS = (
    "fingerprint",
    "id",
    "status",
    "scope_key",
    "last_seen",
    "content_hash",
    "occurrences",
    "severity",
    "team_id",
    "entry_hash",
)


def stored_findings(fingerprints: Sequence[str], *, with_details: bool) -> dict[str, Stored]:
    stored: dict[str, Stored] = {}
    for chunk in read_chunks(fingerprints):
        stored.update(stored_rows(Finding.objects.filter(fingerprint__any=chunk), with_details=with_details))
    return stored


def stored_rows(findings: Any, *, with_details: bool = False) -> dict[str, Stored]:
    """The ``Stored`` columns of these findings (a queryset), by fingerprint: one query."""
    stored: dict[str, Stored] = {}
    for fingerprint, pk, status, key, seen, hashed, count, severity, team_id, entry, *details in findings.values_list(
        *STORED_COLUMNS, *(["details"] if with_details else [])
    ):
        stored[fingerprint] = Stored(pk, status, key, seen, hashed, count, severity, details[0] if details else None, team_id, entry)
    return stored


def scope_owners(keys: Iterable[str]) -> dict[str, set[int | None]]:
    """The teams owning findings of each of these scopes (one query per batch of scopes)."""
    owners: dict[str, set[int | None]] = {}
    for chunk in read_chunks(sorted(set(keys))):
        for key, team_id in Finding.objects.filter(scope_key__any=chunk).values_list("scope_key", "team_id").distinct():
            owners.setdefault(key, set()).add(team_id)
    return owners


def creatable(row: dict[str, Any], image: Image | None, owners: dict[str, set[int | None]], rights: SenderRights) -> bool:
    """May this sender create this new finding?  Only for a team it may change or unowned; and a finding no rule
    claims (it would fall to the sender's own team) not inside an image or a scope another team owns (an image is
    its first reporter's, a scope its findings' owners')."""
    if not rights.may_change(row["team_id"]):
        return False
    if rights.everything or row["owner_source"] != OwnerSource.REPORT:
        return True
    if image is not None and image.team_id is not None:
        return rights.may_change(image.team_id)
    teams = owners.get(row["scope_key"], set())
    return not teams or any(rights.may_change(team_id) for team_id in teams)


def fallback_scopes(rows: Iterable[dict[str, Any]], images: dict[int, Image], rights: SenderRights) -> set[str]:
    """Scopes whose owners ``creatable`` needs: of new rows falling to the sender's team outside an owned image."""
    if rights.everything:
        return set()
    return {
        row["scope_key"]
        for row in rows
        if row["owner_source"] == OwnerSource.REPORT and (row["image_id"] is None or images[row["image_id"]].team_id is None)
    }


def changed_values(row: Stored, item: Item, *, event: bool) -> dict[str, Any]:
    """What a stored finding takes from the item naming it again: its content when that changed (an event
    takes the latest occurrence's text, details and samples every time, and counts its occurrences), its
    scope when it moved.  Empty when nothing changed."""
    values: dict[str, Any] = {}
    if item.entry_hash and row.entry_hash == item.entry_hash and not event:
        pass  # the same entry, read by the same code: the same content (and not normalised again: unchanged.py)
    elif row.content_hash != item.content_hash:
        values.update(content_of(item, row.details), content_hash=item.content_hash, entry_hash=item.entry_hash)
    elif event:
        content = content_of(item, row.details)
        values.update(description=content["description"], details=content["details"])
    if row.scope_key != item.scope_key:
        values["scope_key"] = item.scope_key
    if event:
        values["occurrences"] = row.occurrences + item.count
    return values


def write_changed(changed: dict[tuple[str, ...], list[Finding]]) -> None:
    """Write changed findings grouped by the fields they change (so no row gets another's columns), with
    "last seen" and the last report."""
    for fields, group in changed.items():
        bulk_update_rows(Finding, group, [*fields, "last_seen", "last_report"], batch_size=BATCH)


def record_occurrences(named: Iterable[tuple[int, Item, dt.datetime]]) -> None:
    """First/last seen per tag, digest and workload of the findings named: (finding id, item, when) triples;
    a finding may come with several items (a batch of event reports, from pods of several image versions).
    An occurrence is written at the first time it is named; one seen within LAST_SEEN_STEP of that is left
    alone (a CI re-run of the same tag writes nothing)."""
    wanted: dict[tuple[int, str, str, str], dt.datetime] = {}
    for pk, item, when in named:
        tag = item.image.tag[:128] if item.image else ""
        digest = item.image.digest[:128] if item.image else ""
        resource = item.resource
        workload = f"{resource.namespace}/{resource.kind}/{resource.name}".strip("/")[:255] if resource and resource.name else ""
        key = (pk, tag, digest, workload)
        if (tag or digest or workload) and (key not in wanted or when < wanted[key]):
            wanted[key] = when
    if not wanted:
        return
    since = min(wanted.values()) - LAST_SEEN_STEP
    seen: dict[tuple[int, str, str, str], dt.datetime] = {}
    tags, digests = {tag for _, tag, _, _ in wanted}, {digest for _, _, digest, _ in wanted}
    for chunk in read_chunks(sorted({pk for pk, *_ in wanted})):
        recent = FindingOccurrence.objects.filter(finding_id__any=chunk, last_seen__gte=since)
        if len(tags) + len(digests) <= OCCURRENCE_FILTER:  # the usual scan: one tag, one digest; not the older tags'
            recent = recent.filter(tag__in=sorted(tags), digest__in=sorted(digests))
        seen.update(
            ((pk, tag, digest, workload), last) for pk, tag, digest, workload, last in recent.values_list(*_OCCURRENCE_KEY, "last_seen")
        )
    rows = [
        {"finding_id": pk, "tag": tag, "digest": digest, "workload": workload, "first_seen": when, "last_seen": when}
        for (pk, tag, digest, workload), when in sorted(wanted.items())
        if (pk, tag, digest, workload) not in seen or seen[pk, tag, digest, workload] < when - LAST_SEEN_STEP
    ]
    insert_rows(FindingOccurrence, rows, unique_fields=["finding", "tag", "digest", "workload"], update_fields=["last_seen"])


_OCCURRENCE_KEY = ("finding_id", "tag", "digest", "workload")
#: Up to this many tags and digests named, the occurrences read are only theirs.
OCCURRENCE_FILTER = 20
