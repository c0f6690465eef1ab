"""Risk score and SLA due dates: pure functions over a finding's facts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from dashboard.selectors import findings as queue_filters

SEVERITY_BASE = {"critical": 9.5, "high": 7.5, "medium": 5.0, "low": 2.5, "info": 0.5, "unknown": 4.0}

#: How each part of the score is explained on hover, in the finding page and in the API.
PART_LABELS = {
    "severity": "severity / CVSS",
    "epss": "EPSS",
    "kev": "in CISA KEV",
    "fix_available": "fix available",
    "exposed": "running now",
}

#: Days before the due date from which a finding is "due soon" (the queue's filter uses the same).
DUE_SOON_DAYS = queue_filters.DUE_SOON_DAYS


def risk_parts(*, severity: str, cvss: float | None, epss: float | None, kev: bool, fix_available: bool, exposed: bool) -> dict[str, float]:
    """The score's components (0-100 in total), shown on hover and in the API.

    Severity (or CVSS when known) weighs most; the likelihood of exploitation (EPSS, KEV)
    and whether the image actually runs raise it; a published fix raises it a little,
    because it is the cheapest risk to remove.
    """
    base = cvss if cvss is not None else SEVERITY_BASE.get(severity, 4.0)
    base = min(max(base, 0.0), 10.0)
    return {
        "severity": round(base * 5.5, 1),  # up to 55
        "epss": round(min(max(epss or 0.0, 0.0), 1.0) * 15, 1),  # up to 15
        "kev": 15.0 if kev else 0.0,
        "fix_available": 5.0 if fix_available else 0.0,
        "exposed": 10.0 if exposed else 0.0,  # a version it was seen in runs now (selectors/running.py)
    }


def risk_score(**facts: Any) -> float:
    return score_of(risk_parts(**facts))


def score_of(parts: dict[str, float]) -> float:
    return round(sum(parts.values()), 1)


def explain(parts: dict[str, Any]) -> str:
    """One line for a hover title: "severity / CVSS 41.3 + EPSS 2.1 + in CISA KEV 15 = 58.4"."""
    shown = [f"{PART_LABELS.get(name, name)} {float(value):g}" for name, value in ordered_parts(parts) if value]
    if not shown:
        return "no risk factors"
    return " + ".join(shown) + f" = {score_of({k: float(v) for k, v in parts.items()}):g}"


def surprise(*, severity: str, cvss: float | None) -> str:
    """Why the score disagrees with the severity word, when it does: the CVSS base score weighs instead
    ("CVSS 10 (scanner said low)"); "" otherwise."""
    if cvss is None:
        return ""
    expected = SEVERITY_BASE.get(severity, 4.0)
    if abs(min(max(cvss, 0.0), 10.0) - expected) < 2.0:
        return ""
    return f"CVSS {cvss:g} (scanner said {severity})"


def ordered_parts(parts: dict[str, Any]) -> list[tuple[str, float]]:
    """The parts in their canonical order (JSON storage may reorder keys)."""
    known = [(name, float(parts[name])) for name in PART_LABELS if name in parts]
    return known + [(name, float(value)) for name, value in parts.items() if name not in PART_LABELS]


def sla_days_for(team_sla: dict[str, Any] | None) -> dict[str, int]:
    """The SLA days per severity: the defaults (VIGIL_SLA_DAYS) overridden by a team's own."""
    days = {key: int(value) for key, value in settings.VIGIL_SLA_DAYS.items()}
    days.update({key: int(value) for key, value in (team_sla or {}).items() if value is not None})
    return days


def due_date(*, severity: str, start: dt.date, sla_days: dict[str, int], kev_due: dt.date | None = None) -> dt.date | None:
    """The SLA due date from ``start``; a KEV due date wins when it is sooner."""
    days = sla_days.get(severity)
    due = start + dt.timedelta(days=int(days)) if days is not None else None
    if kev_due is not None and (due is None or kev_due < due):
        return kev_due
    return due


def sla_state(*, due: dt.date | None, today: dt.date, active: bool) -> str:
    """overdue, due_soon (within DUE_SOON_DAYS), on_track, or none (no SLA or not active)."""
    if due is None or not active:
        return "none"
    if due < today:
        return "overdue"
    if due <= today + dt.timedelta(days=DUE_SOON_DAYS):
        return "due_soon"
    return "on_track"
