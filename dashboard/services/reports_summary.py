from __future__ import annotations

from typing import Any

from dashboard.models import Report


def report_message(report: Report) -> str:
    """What a person should know about how the report was applied ("" when nothing stands out)."""
    foreign = (report.counts or {}).get("not_yours", 0)
    if not foreign:
        return ""
    findings = "finding belongs" if foreign == 1 else "findings belong"
    return (
        f"not yours: {foreign} {findings} to a team this sender may not change and {'was' if foreign == 1 else 'were'} "
        "left as they are (a token changes only its own teams' findings)"
    )


def report_summary(report: Report, *, url: str = "") -> dict[str, Any]:
    """The JSON summary of a report, shared by the API and `manage.py ingest`."""
    return {
        "id": str(report.pk),
        "status": report.status,
        "url": url or f"/api/v1/reports/{report.pk}/",
        "format": report.format or report.declared_format,
        "stream": report.stream,
        "team": report.team.slug if report.team_id and report.team else None,
        "image": report.image.name if report.image_id and report.image else (report.image_ref or None),
        "counts": report.counts,
        "findings_total": report.findings_total,
        "held_closures": len(report.held_closures or []),
        "error": report.error,
        "message": report_message(report),
        "attempts": report.attempts,
        "received_at": report.received_at.isoformat() if report.received_at else None,
        # When the scan happened: the scanner's own time once the report is applied (services/observed.py).
        "observed_at": report.observed_at.isoformat() if report.observed_at else None,
        "started_at": report.started_at.isoformat() if report.started_at else None,
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
    }
