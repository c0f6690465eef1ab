"""The base-image roll-up's counts, refreshed by the hourly snapshot task.

The roll-up groups active OS-package findings by image, team, result target, layer and severity.  Counted per
request that is one aggregate over every such finding (1.5-2 s at 100,000 findings); counted here once an hour
and stored (a few rows per image and layer), the page, its CSV and the API read hundreds of rows instead.  What
they show is as fresh as the last refresh, which they say.  The slow definition stays the one source of
truth: ``selectors.base_images.live_rows`` counts, this stores what it counted (a test holds them equal).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from dashboard.models import BaseLayerCount, Finding
from dashboard.selectors.base_images import live_rows


def base_image_counts_refresh(*, now: dt.datetime | None = None) -> int:
    """Count every team's rows again and replace the stored ones in one transaction; returns the rows stored."""
    now = now or timezone.now()
    rows = live_rows(Finding.objects.all())
    with transaction.atomic():
        BaseLayerCount.objects.all().delete()
        BaseLayerCount.objects.bulk_create(
            [
                BaseLayerCount(
                    image_id=row["image_id"],
                    team_id=row["team_id"],
                    target=row["target"] or "",
                    layer=row["layer"],
                    severity=row["severity"],
                    n=row["n"],
                    fixable=row["fixable"],
                    counted_at=now,
                )
                for row in rows
            ],
            batch_size=2000,
        )
    return len(rows)
