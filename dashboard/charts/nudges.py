"""Did the nudges help: findings of a class per scan, before and after the nudge was completed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BEFORE_COLOUR = "#94a3b8"
AFTER_COLOUR = "#0f766e"


def before_after(rows: Sequence[tuple[str, float | None, float | None]], *, window_days: int = 30) -> dict[str, Any]:
    """A grouped bar chart: per topic, findings per scan in the window before completion and after.

    ``rows`` are (topic label, rate before, rate after); a missing rate (no scans) is drawn as no bar.
    """
    labels = [label for label, _, _ in rows]
    traces = [
        {
            "type": "bar",
            "name": f"{window_days} days before",
            "x": labels,
            "y": [before for _, before, _ in rows],
            "marker": {"color": BEFORE_COLOUR},
            "hovertemplate": "%{x}: %{y} per scan before<extra></extra>",
        },
        {
            "type": "bar",
            "name": f"{window_days} days after",
            "x": labels,
            "y": [after for _, _, after in rows],
            "marker": {"color": AFTER_COLOUR},
            "hovertemplate": "%{x}: %{y} per scan after<extra></extra>",
        },
    ]
    return {
        "data": traces if labels else [],
        "layout": {
            "title": {"text": "New findings of the class per scan, before and after the nudge was done", "font": {"size": 14}},
            "barmode": "group",
            "height": 300,
            "margin": {"l": 48, "r": 10, "t": 40, "b": 80},
            "legend": {"orientation": "h", "y": -0.35},
            "yaxis": {"rangemode": "tozero", "title": {"text": "findings per scan"}},
        },
    }
