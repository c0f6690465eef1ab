"""Template helpers for the triage pages: risk explanations, SLA states and queue links."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES
from dashboard.services import risk

register = template.Library()


@register.filter
def risk_explain(parts: dict[str, Any] | None) -> str:
    """ "severity / CVSS 41.3 + EPSS 2.1 + in CISA KEV 15 = 58.4", for a hover title."""
    return risk.explain(parts or {})


@register.filter
def risk_surprise(finding: Any) -> str:
    """ "CVSS 10 (scanner said low)" when the score's severity part is not the severity word's."""
    return risk.surprise(severity=getattr(finding, "severity", ""), cvss=getattr(finding, "cvss", None))


@register.filter
def age_days(finding: Any) -> int | None:
    """Whole days since the finding was first seen."""
    first = getattr(finding, "first_seen", None)
    return (timezone.localdate() - timezone.localtime(first).date()).days if first else None


@register.filter
def days_left(finding: Any) -> int | None:
    """Days until the due date (negative: overdue); None without a due date or when nothing is to do."""
    due = getattr(finding, "due_date", None)
    if due is None or getattr(finding, "status", "") not in ACTIVE_STATUSES:
        return None
    return (due - timezone.localdate()).days


@register.filter
def risk_rows(parts: dict[str, Any] | None) -> list[tuple[str, float]]:
    return [(risk.PART_LABELS.get(name, name), value) for name, value in risk.ordered_parts(parts or {})]


@register.filter
def sla_state(finding: Any) -> str:
    """overdue, due_soon, on_track or none, for a finding (or a row with status and due_date)."""
    status = getattr(finding, "status", "")
    due = getattr(finding, "due_date", None)
    return risk.sla_state(due=due, today=timezone.localdate(), active=status in ACTIVE_STATUSES)


@register.filter
def words(value: str) -> str:
    """due_soon -> due soon; risk_accepted -> risk accepted."""
    return str(value or "").replace("_", " ")


@register.simple_tag
def queue_url(query: dict[str, str], **changes: Any) -> str:
    """The queue URL with these filters, changed (a value of "" removes a filter)."""
    merged = {**query, **{key: str(value) for key, value in changes.items()}}
    merged = {key: value for key, value in merged.items() if value}
    return "/findings/" + ("?" + urlencode(merged) if merged else "")
