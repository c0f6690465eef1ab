"""{% load nudges %}{% nudges_panel user team %}: the champion's nudges, on the home and team pages.

With ``team`` None (the home page across all your teams) it shows the nudges of every team you can read.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from dashboard.selectors.access import can_triage
from dashboard.selectors.nudges import nudges_for_panel
from dashboard.services.nudges import DISMISS_REASONS, SNOOZE_DAYS

register = template.Library()


@register.inclusion_tag("dashboard/_nudges_panel.html", takes_context=True)
def nudges_panel(context: template.Context, user: Any, team: Any, limit: int = 5) -> dict[str, Any]:
    request = context.get("request")
    nudges = nudges_for_panel(user=user, team=team, now=timezone.now(), limit=limit)
    allowed = {team_id: can_triage(user, nudge.team) for team_id, nudge in {n.team_id: n for n in nudges}.items()}
    for nudge in nudges:
        nudge.can_act = allowed[nudge.team_id]  # type: ignore[attr-defined]
    return {
        "nudges": nudges,
        "team": team,
        "csrf_token": context.get("csrf_token"),
        "next": request.get_full_path() if request is not None else "",
        "dismiss_reasons": DISMISS_REASONS,
        "snooze_days": SNOOZE_DAYS,
    }
