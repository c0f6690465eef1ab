"""{% load training %}{% training_for finding %}: "learn how to avoid this" on a finding's page."""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.selectors.training import modules_for_finding

register = template.Library()


@register.inclusion_tag("dashboard/_training_for_finding.html")
def training_for(finding: Any, limit: int = 4) -> dict[str, Any]:
    return {"modules": modules_for_finding(finding=finding, limit=limit), "finding": finding}
