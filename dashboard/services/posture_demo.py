"""Posture in the demo: the daily snapshots of the demo's history, rebuilt from its findings' events."""

from __future__ import annotations

from dashboard.services.snapshots import snapshots_backfill

#: The demo's history is 90 days; one more so "the previous period" of a 90-day view has a start.
DEMO_DAYS = 92


def posture_demo() -> int:
    return snapshots_backfill(days=DEMO_DAYS)
