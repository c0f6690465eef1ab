"""What the navigation shows: only links the person may follow."""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.selectors import access

register = template.Library()


@register.simple_tag
def may_view_audit(user: Any) -> bool:
    """The audit log: administrators and managers (the records of the teams granted to them)."""
    return access.can_view_audit(user)
