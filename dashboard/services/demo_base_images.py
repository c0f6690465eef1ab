"""Demo data for the base-image roll-up: a second Payments image on the same alpine base as payments/api.

With it the Payments champion, who sees only Payments, also has a base shared by two images; the manager sees
that base across Payments and Storefront (storefront/checkout), and Platform's two redis workloads on debian 10.4.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit

REPORT = Path(settings.BASE_DIR) / "tests" / "fixtures" / "trivy" / "scheme_2_many_vulns.json"
IMAGE = "registry.example.com/payments/billing:0.4.0"


def demo_base_images(*, today: dt.date) -> None:
    """Scan payments/billing (the same alpine 3.9.4 layer as payments/api) this morning."""
    observed = timezone.make_aware(dt.datetime.combine(today, dt.time(8, 0)))
    report, _ = report_submit(data=REPORT.read_bytes(), team_slug="payments", image=IMAGE, observed_at=observed, enqueue_now=False)
    report_process(report.pk)
