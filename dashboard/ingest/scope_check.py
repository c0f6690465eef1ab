"""Refusing at receive time a report about nothing but other teams' findings (403, before it is stored).

A dry run of the rules ``apply.apply_report`` applies, on what is stored now, for a scan or policy report the
API parsed in full anyway (VIGIL_VALIDATE_SYNC_BYTES).  Event reports (one Falco alert per request) are not
checked here, to keep their two-statement receive path; neither are larger reports.  For those, and when
findings moved between receiving and applying, the worker decides: the report ends ``failed`` with the same
reason (``rights.FOREIGN_SCOPE``).
"""

from __future__ import annotations

from typing import Any

from dashboard.ingest.apply import report_scopes
from dashboard.ingest.rights import SenderRights
from dashboard.ingest.write import EVENT_FORMATS, Item, creatable, scope_owners
from dashboard.models import ACTIVE_STATUSES, Finding, Image, OwnerSource, Team
from dashboard.services.ownership import RuleSet, resolve_owner
from scanners.base import ImageRef, ParseResult


def foreign_only(
    *, rights: SenderRights, team: Team | None, team_named: bool, source: str, stream: str, image_ref: str, result: ParseResult
) -> bool:
    """Would applying this report leave everything as it is, because all it is about belongs to teams its sender
    may not change?  (False when it is about nothing at all: an empty scan of a new image.)"""
    if rights.everything or source in EVENT_FORMATS:
        return False
    override = ImageRef.parse(image_ref) if image_ref else None
    items, scopes = report_scopes(team=team, source=source, stream=stream, result=result, override=override)
    stored = dict(Finding.objects.filter(fingerprint__any=list(items)).values_list("fingerprint", "team_id"))
    owners = set(stored.values())
    owners |= set(Finding.objects.filter(scope_key__any=sorted(scopes), status__in=ACTIVE_STATUSES).values_list("team_id", flat=True))
    if result.resolved:
        passing = Finding.objects.filter(fingerprint__any=list(result.resolved), status__in=ACTIVE_STATUSES)
        owners |= set(passing.values_list("team_id", flat=True))
    if any(rights.may_change(team_id) for team_id in owners):
        return False
    new = [item for fingerprint, item in items.items() if fingerprint not in stored]
    if any(_creatable(new, team=team, team_named=team_named, labels=result.labels, rights=rights)):
        return False
    return bool(owners or new)


def _creatable(items: list[Item], *, team: Team | None, team_named: bool, labels: dict[str, str], rights: SenderRights) -> list[bool]:
    """For each new item, whether the worker would create it for this sender (``write.creatable``)."""
    if not items:
        return []
    rules = RuleSet.load()
    images = _images({(item.image.registry, item.image.repository) for item in items if item.image is not None})
    rows: list[tuple[dict[str, Any], Image | None]] = []
    for item in items:
        resource = item.parsed.resource
        owner = resolve_owner(report_team=team, image=item.image, resource=resource, labels=labels, named=team_named, rules=rules)
        image = images.get(item.image.name) if item.image is not None else None
        rows.append(({"team_id": owner.team.pk if owner.team else None, "owner_source": owner.source, "scope_key": item.scope_key}, image))
    fallback = {
        row["scope_key"] for row, image in rows if row["owner_source"] == OwnerSource.REPORT and (image is None or image.team_id is None)
    }
    owners = scope_owners(fallback)
    return [creatable(row, image, owners, rights) for row, image in rows]


def _images(keys: set[tuple[str, str]]) -> dict[str, Image]:
    """The stored images with these (registry, repository), by name."""
    if not keys:
        return {}
    candidates = Image.objects.filter(registry__in={r for r, _ in keys}, repository__in={p for _, p in keys})
    return {image.name: image for image in candidates if (image.registry, image.repository) in keys}
