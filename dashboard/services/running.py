"""Recording what runs (workload sightings) and keeping "running" on findings true as sightings come and go.

Sightings are written cheaply: one upsert statement for all the images of a decision or a report, which rewrites a
row only when its "last seen" is older than SIGHTING_STEP (``ON CONFLICT ... DO UPDATE ... WHERE``), and a process
keeps the keys it wrote in the last SIGHTING_STEP so a stream of admission requests for the same workload (every
pod of a ReplicaSet, a crash-looping Job) does not even send the statement.  Running expires by days
(VIGIL_RUNNING_DAYS), so a "last seen" a minute stale changes nothing anyone sees, and skipping the write can never
change a decision: decisions read findings, never sightings.

A sighting new to the database makes the findings of its image re-scored after commit; ``running_refresh``
(periodic) re-scores findings whose image started or stopped running otherwise (a sighting that expired, one
seen again after expiring).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from dashboard.db.sightings import upsert_sightings
from dashboard.ingest.publish import TASKS, enqueue
from dashboard.ingest.write import Item
from dashboard.models import ACTIVE_STATUSES, Finding, Image, Stream, WorkloadSighting
from dashboard.selectors.running import running_since
from dashboard.services import intel
from scanners.base import ImageRef

logger = logging.getLogger(__name__)

#: How stale a sighting's "last seen" may get before it is written again.
SIGHTING_STEP = dt.timedelta(minutes=1)
#: Re-scores the findings of newly sighted images (by name: services never import tasks).
RESCORE_TASK = TASKS.RESCORE_IMAGES
_MEMO_LIMIT = 20_000


@dataclasses.dataclass(frozen=True)
class Sighting:
    cluster: str
    namespace: str
    workload_kind: str
    workload_name: str
    image: ImageRef
    team_id: int | None
    source: str

    def key(self) -> tuple[str, ...]:
        return (self.cluster, self.namespace, self.workload_kind, self.workload_name, self.image.name, self.image.tag, self.image.digest)


class _Written(threading.local):
    """Keys this thread wrote, with the time (``now``, as a timestamp) of the write."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, ...], float] = {}


_written = _Written()


def forget_written() -> None:
    """Forget what this thread wrote (tests, and a new process)."""
    _written.at.clear()


def sightings_record(*, sightings: Iterable[Sighting], now: dt.datetime) -> list[int]:
    """Record sightings of images Vigil knows (an image never reported has no findings to run); returns the ids of
    images with a sighting new to the database (their findings are re-scored after commit)."""
    clock = now.timestamp()
    step = SIGHTING_STEP.total_seconds()
    due = {s.key(): s for s in sightings if clock - _written.at.get(s.key(), -step) >= step}
    if not due:
        return []
    keys = {(s.image.registry, s.image.repository) for s in due.values()}
    images = {
        (registry, repository): pk
        for pk, registry, repository in Image.objects.filter(
            registry__in={r for r, _ in keys}, repository__in={p for _, p in keys}
        ).values_list("pk", "registry", "repository")
    }
    rows = [(s, images[(s.image.registry, s.image.repository)]) for s in due.values() if (s.image.registry, s.image.repository) in images]
    new_images = _upsert(rows, now) if rows else []
    if len(_written.at) > _MEMO_LIMIT:
        _written.at.clear()
    _written.at.update(dict.fromkeys(due, clock))
    if new_images:
        transaction.on_commit(lambda: _publish_rescore(new_images))
    return new_images


def _upsert(rows: list[tuple[Sighting, int]], now: dt.datetime) -> list[int]:
    values: list[list[Any]] = []
    for s, image_id in rows:
        values.append([s.cluster[:255], s.namespace[:255], s.workload_kind[:100], s.workload_name[:255], image_id])
        values[-1] += [s.image.tag[:128], s.image.digest[:128], s.team_id, s.source, now, now]
    returned = upsert_sightings(values, stale_before=now - SIGHTING_STEP)
    return sorted({image_id for image_id, first_seen in returned if _same_moment(first_seen, now)})


def _same_moment(value: object, now: dt.datetime) -> bool:
    """Was the row inserted by this statement (its first sighting is now)?  SQLite hands back text."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value == now


def _publish_rescore(image_ids: list[int]) -> None:
    """Never raises: what a failed publish misses, the periodic ``running_refresh`` re-scores."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        rescore_images(image_ids=image_ids)
        return
    try:
        enqueue(RESCORE_TASK, [image_ids])
    except Exception:
        logger.warning("could not enqueue re-scoring of images %s; the periodic refresh will", image_ids, exc_info=True)


def rescore_images(*, image_ids: list[int]) -> int:
    """Re-score the active findings of these images (they started running)."""
    ids = list(Finding.objects.filter(image_id__in=image_ids, status__in=ACTIVE_STATUSES).values_list("id", flat=True))
    return intel.findings_rescore(ids=ids)


def running_refresh(*, now: dt.datetime | None = None) -> int:
    """Re-score active findings whose "running" no longer matches the sightings: flagged but no live sighting of their
    image (expired), or not flagged while one is live.  Idempotent; returns how many findings changed."""
    since = running_since(now)
    live = WorkloadSighting.objects.filter(image_id=OuterRef("image_id"), last_seen__gte=since)
    active = Finding.objects.filter(status__in=ACTIVE_STATUSES).annotate(live=Exists(live))
    stale = active.filter(exposed=True, live=False).exclude(stream=Stream.RUNTIME, last_seen__gte=since)
    started = active.filter(Q(exposed=False) & Q(live=True))
    ids = [*stale.values_list("id", flat=True), *started.values_list("id", flat=True)]
    return intel.findings_rescore(ids=ids)


#: Report formats whose findings say an image version runs in a workload (a cluster scanner, a runtime sensor).
RUNNING_SOURCES = {"trivy-operator": WorkloadSighting.Source.TRIVY_OPERATOR, "falco": WorkloadSighting.Source.FALCO}


def sightings_of_report(*, items: Iterable[Item], source: str, team_id: int | None, now: dt.datetime) -> list[int]:
    """Sightings of the workloads and images a trivy-operator report or a Falco alert names (none for other formats)."""
    if source not in RUNNING_SOURCES:
        return []
    found = []
    for item in items:
        resource = item.parsed.resource
        if item.image is not None and resource is not None and resource.name:
            found.append(
                Sighting(resource.cluster, resource.namespace, resource.kind, resource.name, item.image, team_id, RUNNING_SOURCES[source])
            )
    return sightings_record(sightings=found, now=now)
