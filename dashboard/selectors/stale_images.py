"""Images not scanned for a while: the one definition of "stale", read by the posture snapshots
(services/posture_sources.py) and shown on the image page, the team page and the champion's home.

An image is scanned by a done report of the scan stream about it, on the calendar day (TIME_ZONE) the report was
observed; it is stale on a day STALE_DAYS or more after its last scan.  An image never scanned (only seen by
admission or runtime) is not stale: there is no scan to be late.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from django.db.models import Max, QuerySet
from django.utils import timezone

from dashboard.models import Image, Report, ReportStatus, Stream

STALE_DAYS = 14
#: Stale images listed on the home page at most (the oldest scans first).
HOME_LIMIT = 20


@dataclasses.dataclass(frozen=True)
class StaleImage:
    image: Image
    last_scan: dt.datetime
    days: int


def scan_reports() -> QuerySet[Report]:
    """What counts as a scan of an image."""
    return Report.objects.filter(image__isnull=False, status=ReportStatus.DONE).exclude(stream__in=[Stream.ADMISSION, Stream.RUNTIME])


def days_between(scanned: dt.date, day: dt.date) -> int:
    return (day - scanned).days


def is_stale(*, scanned: dt.date, day: dt.date) -> bool:
    return days_between(scanned, day) >= STALE_DAYS


def days_unscanned(last_scan: dt.datetime | None, today: dt.date | None = None) -> int | None:
    """Days since the last scan when the image is stale on ``today``, else None."""
    if last_scan is None:
        return None
    today = today or timezone.localdate()
    scanned = timezone.localtime(last_scan).date()
    return days_between(scanned, today) if is_stale(scanned=scanned, day=today) else None


def last_scans(image_ids: Iterable[int]) -> dict[int, dt.datetime]:
    """Image id -> when its last scan was observed (images never scanned are absent); one query."""
    rows = scan_reports().filter(image_id__in=list(image_ids)).order_by().values("image_id").annotate(last=Max("observed_at"))
    return {row["image_id"]: row["last"] for row in rows}


def stale_images_of(*, team_ids: list[int] | None, today: dt.date | None = None, limit: int = HOME_LIMIT) -> list[StaleImage]:
    """The stale images of these teams (None: of every team), the longest unscanned first."""
    today = today or timezone.localdate()
    first_fresh_day = today - dt.timedelta(days=STALE_DAYS - 1)
    cutoff = timezone.make_aware(dt.datetime.combine(first_fresh_day, dt.time.min), timezone.get_default_timezone())
    images: QuerySet[Image] = Image.objects.filter(team__isnull=False)
    if team_ids is not None:
        images = images.filter(team_id__in=team_ids)
    reports = scan_reports().filter(image__in=images).order_by().values("image_id").annotate(last=Max("observed_at"))
    rows: list[tuple[int, dt.datetime]] = list(
        reports.filter(last__lt=cutoff).order_by("last", "image_id").values_list("image_id", "last")[:limit]
    )
    by_id = Image.objects.select_related("team").in_bulk([image_id for image_id, _ in rows])
    out = []
    for image_id, last in rows:
        days = days_unscanned(last, today)
        if days is not None:
            out.append(StaleImage(image=by_id[image_id], last_scan=last, days=days))
    return out
