"""Every posture series as CSV rows (header first), from the same reads as the pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dashboard.models import SNAPSHOT_SEVERITIES
from dashboard.models.posture import AGE_BUCKETS
from dashboard.selectors import posture
from dashboard.selectors.posture_page import STREAMS, shift_left
from dashboard.selectors.posture_teams import team_comparison
from dashboard.selectors.queue import csv_safe


def cell(value: Any) -> str:
    """Numbers as they are (a negative change is not a formula); everything else made spreadsheet-safe."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return csv_safe(value)


SERIES = ("open", "flow", "time_to_fix", "sla", "age", "teams", "shift_left")


def _open(points: list[dict[str, Any]]) -> Iterator[list[Any]]:
    yield ["date", *SNAPSHOT_SEVERITIES, "overdue"]
    for p in points:
        yield [p["date"], *posture.open_by_severity(p).values(), posture.overdue_total(p)]


def _flow(points: list[dict[str, Any]]) -> Iterator[list[Any]]:
    names = [*posture.COUNTS, *posture.EXTRAS]
    yield ["date", *names]
    for p in points:
        yield [p["date"], *[int(p.get(name) or 0) for name in names]]


def _time_to_fix(points: list[dict[str, Any]]) -> Iterator[list[Any]]:
    yield ["date", *[f"mean_days_{s}" for s in SNAPSHOT_SEVERITIES], *[f"fixed_{s}" for s in SNAPSHOT_SEVERITIES]]
    for p in points:
        yield [p["date"], *posture.mttr_days([p]).values(), *[int(p.get(f"ttf_n_{s}") or 0) for s in SNAPSHOT_SEVERITIES]]


def _sla(points: list[dict[str, Any]]) -> Iterator[list[Any]]:
    yield ["date", "fixed_with_due_date", "fixed_within_sla", "sla_compliance", "open", "overdue", "open_within_sla"]
    for p in points:
        open_total = sum(posture.open_by_severity(p).values())
        yield [
            p["date"],
            p.get("fixed_with_due") or 0,
            p.get("fixed_in_sla") or 0,
            posture.sla_compliance([p]),
            open_total,
            posture.overdue_total(p),
            posture.open_within_sla(p),
        ]


def export_rows(*, user: Any, scope: posture.Scope, period: posture.Period, series: str) -> Iterator[list[str]]:
    """``series`` is one of SERIES (checked by the caller)."""
    if series == "teams":
        yield ["team", "open_critical", "open_high", "overdue", "sla_compliance", "median_ttf_days", "change", "champions", "stale_images"]
        for row in team_comparison(user=user, period=period):
            values = row.as_json()
            values["champions"] = " ".join(row.champions) or "none"
            yield [cell(values[name]) for name in ("team", "open_critical", "open_high", "overdue", "sla_compliance")] + [
                cell(values[name]) for name in ("median_ttf_days", "change", "champions", "stale_images")
            ]
        return
    if series == "shift_left":
        rows, _ = shift_left(scope=scope, period=period)
        yield ["team", "class", "findings", *[f"{s}_share" for s in STREAMS]]
        for item in rows:
            yield [cell(v) for v in (item.team, item.label, item.total, *item.shares.values())]
        return
    points = posture.series(scope=scope, period=period)
    if series == "age":
        ages = posture.age_buckets(scope=scope, day=points[-1]["date"] if points else None)
        yield ["age_days", "open"]
        for name, _, _ in AGE_BUCKETS:
            yield [cell(name), cell(ages.get(name, 0))]
        return
    writer = {"open": _open, "flow": _flow, "time_to_fix": _time_to_fix, "sla": _sla}[series]
    for line in writer(points):
        yield [cell(value) for value in line]
