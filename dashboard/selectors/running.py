"""What runs now: live workload sightings (admission, trivy-operator, Falco), matched to image versions.

A sighting is live while it was seen within VIGIL_RUNNING_DAYS.  A finding of an image runs when a live sighting of
that image shows a version the finding was seen in: the same digest when both know theirs, else the same tag; a
finding that knows no version of its image runs when any version of the image does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from dashboard.models import FindingOccurrence, WorkloadSighting
from dashboard.models.access import visible_team_filter

Version = tuple[str, str]  # (tag, digest)


def running_since(now: dt.datetime | None = None) -> dt.datetime:
    """Sightings seen from this moment on are running."""
    return (now or timezone.now()) - dt.timedelta(days=settings.VIGIL_RUNNING_DAYS)


def live_sightings(now: dt.datetime | None = None) -> QuerySet[WorkloadSighting]:
    return WorkloadSighting.objects.filter(last_seen__gte=running_since(now))


def running_versions(image_ids: Iterable[int], now: dt.datetime | None = None) -> dict[int, set[Version]]:
    """Image id -> the versions of it running now (one query)."""
    out: dict[int, set[Version]] = {}
    wanted = sorted(set(image_ids))
    if not wanted:
        return out
    for image_id, tag, digest in live_sightings(now).filter(image_id__in=wanted).values_list("image_id", "tag", "digest"):
        out.setdefault(image_id, set()).add((tag, digest))
    return out


def version_matches(finding_version: Version, running: Version) -> bool:
    tag, digest = finding_version
    running_tag, running_digest = running
    if digest and running_digest:
        return digest == running_digest
    return bool(tag) and tag == running_tag


def is_running(versions: Iterable[Version], running: set[Version] | None) -> bool:
    """Does a finding seen in ``versions`` of its image run, given the image's running versions?"""
    if not running:
        return False
    known = [version for version in versions if version[0] or version[1]]
    if not known:
        return True  # the finding knows no version: the repository runs
    return any(version_matches(version, live) for version in known for live in running)


def finding_versions(finding_ids: Sequence[int]) -> dict[int, set[Version]]:
    """Finding id -> the image versions it was seen in (its occurrences; one query)."""
    out: dict[int, set[Version]] = {}
    if not finding_ids:
        return out
    rows = FindingOccurrence.objects.filter(finding_id__in=list(finding_ids)).exclude(tag="", digest="")
    for pk, tag, digest in rows.values_list("finding_id", "tag", "digest"):
        out.setdefault(pk, set()).add((tag, digest))
    return out


def finding_sightings(*, finding: Any, user: Any, now: dt.datetime | None = None) -> list[WorkloadSighting]:
    """Where a finding's image runs now in the versions the finding was seen in, as ``user`` may see it."""
    if finding.image_id is None:
        return []
    versions = finding_versions([finding.pk]).get(finding.pk, set())
    scope = visible_team_filter(user) or {}
    rows = live_sightings(now).filter(image_id=finding.image_id, **scope).select_related("image").order_by("-last_seen")[:200]
    return [row for row in rows if is_running(versions, {(row.tag, row.digest)})]
