"""Waiting for a report to be done, for a sender that asked to learn the outcome in the same call (``?wait=``)."""

from __future__ import annotations

import time
from typing import Any

from dashboard.errors import ApplicationError
from dashboard.models import Report, ReportStatus

#: The longest a sender may wait (seconds): a gunicorn worker is held meanwhile.
MAX_WAIT_SECONDS = 120
_FINISHED = (ReportStatus.DONE, ReportStatus.FAILED)


def wait_seconds(value: str | None) -> float | None:
    """``?wait=`` as seconds (None: absent); 400 unless it is a number from 0 to MAX_WAIT_SECONDS."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # also refuses nan and inf
        raise ApplicationError(f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}", code="invalid_wait")
    return seconds


def report_wait(*, report: Report, seconds: float, interval: float = 0.2) -> Report:
    """The report once it is done or failed, or as it is after ``seconds`` (polls the database: works with any worker)."""
    deadline = time.monotonic() + seconds
    while True:
        status = Report.objects.filter(pk=report.pk).values_list("status", flat=True).first()
        if status in _FINISHED or time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    return Report.objects.select_related("team", "image").get(pk=report.pk)


def report_image_ref(report: Any) -> str:
    """The image a report is about, as precisely as it was named: the sender's ``?image=``, else the report's own image."""
    if report.image_ref:
        return str(report.image_ref)
    return report.image.name if report.image_id and report.image else ""
