"""Images and their tags (versions) named by a report, as ingest records them.

"Last seen" of an image and of a tag moves at most once per LAST_SEEN_STEP, like that of findings; a
batch of event reports applied in one transaction records each only once (``Recorded``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from dashboard.models import Image, ImageVersion, Team
from scanners.base import ImageRef

#: How stale "last seen" may get before a report moves it forward (findings, images, tags).
LAST_SEEN_STEP = dt.timedelta(hours=1)


@dataclasses.dataclass
class Recorded:
    """The images and tags already recorded in the current transaction (by earlier reports of a batch)."""

    images: dict[str, Image] = dataclasses.field(default_factory=dict)
    versions: set[tuple[int, str, str]] = dataclasses.field(default_factory=set)


def images_record(
    refs: Iterable[ImageRef], team: Team | None, labels: dict[str, str], now: dt.datetime, batch: Recorded
) -> dict[str, Image]:
    """Create the images the report names that are new, move "last seen" forward, record their tags."""
    by_name = {ref.name: ref for ref in refs}
    if not by_name:
        return {}
    if by_name.keys() <= batch.images.keys() and all(
        (batch.images[ref.name].pk, ref.tag, ref.digest) in batch.versions for ref in by_name.values() if ref.tag or ref.digest
    ):
        return {name: batch.images[name] for name in by_name}  # recorded by an earlier report of this batch
    keys = {(ref.registry, ref.repository) for ref in by_name.values()}

    def known(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Image]:
        rows = Image.objects.filter(registry__in={r for r, _ in wanted}, repository__in={p for _, p in wanted})
        return {(image.registry, image.repository): image for image in rows if (image.registry, image.repository) in wanted}

    found = known(keys)
    missing = keys - found.keys()
    if missing:  # created once; every later report of the image reads it only
        Image.objects.bulk_create(
            [Image(registry=r, repository=p, team=team, labels=labels, first_seen=now, last_seen=now) for r, p in missing],
            ignore_conflicts=True,
        )
        found.update(known(missing))
    images = {image.name: image for image in found.values()}
    # "Last seen" of images and their versions moves at most once per LAST_SEEN_STEP, like that of findings:
    # a stream of runtime alerts from one image does not rewrite its row for every alert.
    stale = [image.pk for image in images.values() if image.last_seen < now - LAST_SEEN_STEP]
    if stale:
        Image.objects.filter(pk__in=stale).update(last_seen=now)
    unowned = [image.pk for image in images.values() if image.team_id is None]
    if team is not None and unowned:
        Image.objects.filter(pk__in=unowned, team__isnull=True).update(team=team)
    versions = {(images[ref.name].pk, ref.tag, ref.digest) for ref in by_name.values() if ref.tag or ref.digest}
    for pk, tag, digest in versions - batch.versions:
        seen = ImageVersion.objects.filter(image_id=pk, tag=tag, digest=digest).values_list("pk", "last_seen").first()
        if seen is None:
            ImageVersion.objects.bulk_create(
                [ImageVersion(image_id=pk, tag=tag, digest=digest, first_seen=now, last_seen=now)], ignore_conflicts=True
            )
        elif seen[1] < now - LAST_SEEN_STEP:
            ImageVersion.objects.filter(pk=seen[0], last_seen__lt=now).update(last_seen=now)
    batch.images.update(images)
    batch.versions.update(versions)
    return images
