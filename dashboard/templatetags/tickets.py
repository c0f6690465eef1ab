"""Tickets beside findings: ``{{ tickets|tickets_of:f.pk }}`` picks one finding's rows from ``selectors.tickets.ticket_rows``."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def tickets_of(rows: dict[int, list[dict[str, Any]]] | None, finding_id: int) -> list[dict[str, Any]]:
    return (rows or {}).get(finding_id, [])
