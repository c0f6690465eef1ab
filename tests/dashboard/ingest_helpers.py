from __future__ import annotations

import datetime as dt

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import Report


def ingest(data: bytes, *, team: str = "", image: str = "", format_name: str = "", observed_at: dt.datetime | None = None) -> Report:
    """Store and process a report in-process, as a worker would (no deduplication)."""
    report, _ = report_submit(
        data=data, team_slug=team, image=image, format_name=format_name, observed_at=observed_at, enqueue_now=False, deduplicate=False
    )
    report_process(report.pk)
    report.refresh_from_db()
    return report
