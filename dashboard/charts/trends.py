from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dashboard.charts.palette import SEVERITIES, SEVERITY_COLOURS

__all__ = ["SEVERITIES", "SEVERITY_COLOURS", "open_by_severity_over_time", "severity_bar"]


def open_by_severity_over_time(
    points: Sequence[tuple[dt.date, dict[str, int]]], *, title: str = "Open findings by severity"
) -> dict[str, Any]:
    """A stacked area chart: one trace per severity, one point per day (summed across teams)."""
    totals: dict[dt.date, dict[str, int]] = {}
    for day, counts in points:
        bucket = totals.setdefault(day, dict.fromkeys(SEVERITIES, 0))
        for severity in SEVERITIES:
            bucket[severity] += int(counts.get(severity, 0) or 0)
    days = sorted(totals)
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "stackgroup": "open",
            "name": severity,
            "x": [day.isoformat() for day in days],
            "y": [totals[day][severity] for day in days],
            "line": {"width": 1, "color": SEVERITY_COLOURS[severity]},
            "hovertemplate": "%{x}: %{y} " + severity + "<extra></extra>",
        }
        for severity in SEVERITIES
        if any(totals[day][severity] for day in days)
    ]
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "font": {"size": 14}},
            "margin": {"l": 40, "r": 10, "t": 36, "b": 30},
            "height": 280,
            "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"type": "date"},
            "yaxis": {"rangemode": "tozero", "title": {"text": "open findings"}},
        },
    }


def severity_bar(counts: dict[str, int], *, title: str = "Open findings") -> dict[str, Any]:
    present = [s for s in SEVERITIES if counts.get(s)]
    return {
        "data": [
            {
                "type": "bar",
                "x": present,
                "y": [counts[s] for s in present],
                "marker": {"color": [SEVERITY_COLOURS[s] for s in present]},
                "hovertemplate": "%{x}: %{y}<extra></extra>",
            }
        ],
        "layout": {"title": {"text": title, "font": {"size": 14}}, "height": 240, "margin": {"l": 40, "r": 10, "t": 36, "b": 30}},
    }
