"""Risk score and SLA due dates: pure functions over a finding's facts."""

from __future__ import annotations

import datetime as dt

SEVERITY_BASE = {"critical": 9.5, "high": 7.5, "medium": 5.0, "low": 2.5, "info": 0.5, "unknown": 4.0}


def risk_parts(*, severity: str, cvss: float | None, epss: float | None, kev: bool, fix_available: bool, exposed: bool) -> dict[str, float]:
    """The score's components (0-100 in total), shown on hover and in the API."""
    base = cvss if cvss is not None else SEVERITY_BASE.get(severity, 4.0)
    return {
        "severity": round(base * 5.5, 1),  # up to 55
        "epss": round((epss or 0.0) * 15, 1),  # up to 15
        "kev": 15.0 if kev else 0.0,
        "fix_available": 5.0 if fix_available else 0.0,
        "exposed": 10.0 if exposed else 0.0,  # deployed (admission) or alerting at runtime
    }


def risk_score(**facts: object) -> float:
    return round(sum(risk_parts(**facts).values()), 1)  # type: ignore[arg-type]


def due_date(*, severity: str, start: dt.date, sla_days: dict[str, int], kev_due: dt.date | None = None) -> dt.date | None:
    """The SLA due date from ``start``; a KEV due date wins when it is sooner."""
    days = sla_days.get(severity)
    due = start + dt.timedelta(days=int(days)) if days is not None else None
    if kev_due is not None and (due is None or kev_due < due):
        return kev_due
    return due
