"""Posture charts: pure functions, data in, Plotly figure (a dict) out.

Colours are colour-blind safe: severities and streams use the Okabe-Ito palette (plus Paul Tol's wine for
critical), which stays distinguishable with protanopia, deuteranopia and tritanopia; the heatmap uses Plotly's
"Cividis" scale, designed to read the same with colour-vision deficiency.  No chart relies on colour alone:
every trace is named in the legend and in its hover text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dashboard.charts.palette import SEVERITIES, SEVERITY_COLOURS, STREAM_COLOURS

Figure = dict[str, Any]


def _layout(title: str, *, y: str, height: int = 280, percent: bool = False, **extra: Any) -> dict[str, Any]:
    yaxis: dict[str, Any] = {"rangemode": "tozero", "title": {"text": y}}
    if percent:
        yaxis.update(range=[0, 100], ticksuffix="%")
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 50, "r": 10, "t": 36, "b": 40},
        "height": height,
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.25},
        "yaxis": yaxis,
        **extra,
    }


def week_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week."""
    return day - dt.timedelta(days=day.weekday())


def new_versus_fixed(points: Sequence[tuple[dt.date, int, int]]) -> Figure:
    """Bars per week: findings new and fixed (from daily (day, new, fixed))."""
    weeks: dict[dt.date, list[int]] = {}
    for day, new, fixed in points:
        bucket = weeks.setdefault(week_of(day), [0, 0])
        bucket[0] += new
        bucket[1] += fixed
    x = [week.isoformat() for week in sorted(weeks)]
    traces = [
        {"type": "bar", "name": name, "x": x, "y": [weeks[w][i] for w in sorted(weeks)], "marker": {"color": colour}}
        for i, (name, colour) in enumerate((("new", "#D55E00"), ("fixed", "#009E73")))
    ]
    return {"data": traces, "layout": _layout("New versus fixed per week", y="findings", barmode="group", xaxis={"type": "date"})}


def time_to_fix(points: Sequence[tuple[dt.date, dict[str, tuple[int, float]]]]) -> Figure:
    """Mean days to fix per severity and week (from daily {severity: (fixes, sum of days)})."""
    weeks: dict[dt.date, dict[str, list[float]]] = {}
    for day, by_severity in points:
        bucket = weeks.setdefault(week_of(day), {})
        for severity, (n, days) in by_severity.items():
            total = bucket.setdefault(severity, [0, 0.0])
            total[0] += n
            total[1] += days
    ordered = sorted(weeks)
    traces = []
    for severity in SEVERITIES:
        y = [round(weeks[w][severity][1] / weeks[w][severity][0], 1) if weeks[w].get(severity, [0])[0] else None for w in ordered]
        if any(value is not None for value in y):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "connectgaps": True,
                    "name": severity,
                    "x": [w.isoformat() for w in ordered],
                    "y": y,
                    "line": {"color": SEVERITY_COLOURS[severity]},
                    "hovertemplate": "week of %{x}: %{y} days " + severity + "<extra></extra>",
                }
            )
    return {"data": traces, "layout": _layout("Mean time to fix by severity, per week", y="days", xaxis={"type": "date"})}


def sla_compliance(points: Sequence[tuple[dt.date, int, int, int, int]]) -> Figure:
    """Per week, the share fixed within SLA; per day, the share of open findings not overdue.

    From daily (day, fixed with a due date, fixed within it, open, overdue).
    """
    weeks: dict[dt.date, list[int]] = {}
    days, within = [], []
    for day, due, kept, open_total, overdue in points:
        bucket = weeks.setdefault(week_of(day), [0, 0])
        bucket[0] += due
        bucket[1] += kept
        days.append(day.isoformat())
        within.append(round(100 * (1 - overdue / open_total), 1) if open_total else None)
    ordered = sorted(weeks)
    fixed_share = [round(100 * weeks[w][1] / weeks[w][0], 1) if weeks[w][0] else None for w in ordered]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "connectgaps": True,
            "name": "fixed within SLA (week)",
            "x": [w.isoformat() for w in ordered],
            "y": fixed_share,
            "line": {"color": "#0072B2"},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "open and not overdue (day)",
            "x": days,
            "y": within,
            "line": {"color": "#E69F00", "dash": "dot"},
        },
    ]
    return {"data": traces, "layout": _layout("SLA compliance", y="share", percent=True, xaxis={"type": "date"})}


def open_by_age(ages: dict[str, int], order: Sequence[str]) -> Figure:
    return {
        "data": [
            {
                "type": "bar",
                "x": [f"{name} days" for name in order],
                "y": [ages.get(name, 0) for name in order],
                "marker": {"color": "#0072B2"},
                "hovertemplate": "%{x}: %{y} open<extra></extra>",
            }
        ],
        "layout": _layout("Open findings by age", y="open findings", height=260, hovermode="closest"),
    }


def team_heatmap(rows: Sequence[tuple[str, dict[str, int]]]) -> Figure:
    """Teams x severities, open findings in each cell (the number is written in the cell too)."""
    z = [[row.get(severity, 0) for severity in SEVERITIES] for _, row in rows]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(SEVERITIES),
                "y": [name for name, _ in rows],
                "z": z,
                "text": z,
                "texttemplate": "%{text}",
                "colorscale": "Cividis",
                "reversescale": True,
                "hovertemplate": "%{y}, %{x}: %{z} open<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Open findings, team x severity", "font": {"size": 14}},
            "height": max(200, 60 + 28 * len(rows)),
            "margin": {"l": 120, "r": 10, "t": 36, "b": 40},
            "yaxis": {"autorange": "reversed"},
        },
    }


def shift_left_shares(rows: Sequence[tuple[str, dict[str, float]]]) -> Figure:
    """Stacked horizontal bars: per (team, class) label, the share first caught by each stream (0..1)."""
    labels = [label for label, _ in rows]
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": stream,
            "y": labels,
            "x": [round(100 * shares.get(stream, 0.0), 1) for _, shares in rows],
            "marker": {"color": STREAM_COLOURS[stream]},
            "hovertemplate": "%{y}: %{x}% " + stream + "<extra></extra>",
        }
        for stream in STREAM_COLOURS
    ]
    layout = _layout("Where findings were first caught", y="", height=max(220, 80 + 24 * len(rows)), hovermode="closest")
    layout.update(barmode="stack", xaxis={"range": [0, 100], "ticksuffix": "%"}, margin={"l": 260, "r": 10, "t": 36, "b": 40})
    return {"data": traces, "layout": layout}


def shift_left_trend(points: Sequence[tuple[dt.date, dict[str, int]]]) -> Figure:
    """Per week, the share of new findings caught by each stream (from daily {stream: n})."""
    weeks: dict[dt.date, dict[str, int]] = {}
    for day, counts in points:
        bucket = weeks.setdefault(week_of(day), {})
        for stream, n in counts.items():
            bucket[stream] = bucket.get(stream, 0) + n
    ordered = sorted(weeks)
    traces = []
    for stream, colour in STREAM_COLOURS.items():
        y = [round(100 * weeks[w].get(stream, 0) / sum(weeks[w].values()), 1) if sum(weeks[w].values()) else None for w in ordered]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": stream,
                "x": [w.isoformat() for w in ordered],
                "y": y,
                "line": {"color": colour},
            }
        )
    return {
        "data": traces,
        "layout": _layout("Share first caught by each stream, per week", y="share", percent=True, xaxis={"type": "date"}),
    }
