"""What the posture pages show: headline figures against the previous period, and shift-left shares (snapshots only)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from dashboard.selectors import posture
from dashboard.selectors.finding_classes import class_label

STREAMS = ("scan", "admission", "runtime")


@dataclasses.dataclass(frozen=True)
class Headline:
    label: str
    value: float | None
    previous: float | None
    unit: str = ""
    #: Fewer is better (open findings, days); for SLA compliance more is better.
    lower_is_better: bool = True

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return round(self.value - self.previous, 2)

    @property
    def direction(self) -> str:
        change = self.change
        if not change:
            return "flat"
        return "up" if change > 0 else "down"

    @property
    def better(self) -> bool | None:
        change = self.change
        if not change:
            return None
        return (change < 0) == self.lower_is_better


def _percent(value: float | None) -> float | None:
    return round(100 * value, 1) if value is not None else None


def headlines(points: list[dict[str, Any]], previous: list[dict[str, Any]]) -> list[Headline]:
    """Open and overdue at the end of each period; SLA compliance and mean time to fix over each period."""
    last, before = (points[-1] if points else {}), (previous[-1] if previous else None)
    return [
        Headline("Open", sum(posture.open_by_severity(last).values()), sum(posture.open_by_severity(before).values()) if before else None),
        Headline("Overdue", posture.overdue_total(last), posture.overdue_total(before) if before else None),
        Headline(
            "Fixed within SLA",
            _percent(posture.sla_compliance(points)),
            _percent(posture.sla_compliance(previous)),
            unit="%",
            lower_is_better=False,
        ),
        Headline("Mean time to fix", posture.mttr_overall(points), posture.mttr_overall(previous), unit=" days"),
    ]


@dataclasses.dataclass(frozen=True)
class ShiftLeftRow:
    team: str
    team_name: str
    klass: str
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def shares(self) -> dict[str, float]:
        total = self.total
        return {stream: round(self.counts.get(stream, 0) / total, 4) if total else 0.0 for stream in STREAMS}


def shift_left(*, scope: posture.Scope, period: posture.Period) -> tuple[list[ShiftLeftRow], list[tuple[dt.date, dict[str, int]]]]:
    """Per team and finding class, how many findings first seen in the period each stream caught; and per day, all classes.

    Two aggregates over the period's first-seen counts (never the findings, nor a JSON document per snapshot).
    """
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for slug, name, klass, stream, n in posture.first_seen_by_class(scope=scope, period=period):
        counts.setdefault((slug, name, klass), {})[stream] = n
    rows = [
        ShiftLeftRow(slug, name, klass, class_label(f"vigil:{klass}") if klass != "other" else "Other", by_stream)
        for (slug, name, klass), by_stream in counts.items()
    ]
    rows.sort(key=lambda row: (row.team_name, -row.total, row.label))
    daily: dict[dt.date, dict[str, int]] = {}
    for day, stream, n in posture.first_seen_by_day(scope=scope, period=period):
        daily.setdefault(day, {})[stream] = n
    return rows, list(daily.items())
