"""Reading tickets: a finding's tickets, the tickets of a page of findings, a team's tracker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboard.models import TicketLink, TrackerConfig


def ticket_rows(*, finding_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Per finding: its tickets (tracker, key, URL, state, whether a scan saw the finding after the close); one query."""
    rows: dict[int, list[dict[str, Any]]] = {}
    links = (
        TicketLink.objects.filter(finding_id__in=list(finding_ids))
        .select_related("ticket", "tracker")
        .order_by("finding_id", "ticket__created_at")
    )
    for link in links:
        ticket = link.ticket
        rows.setdefault(link.finding_id, []).append(
            {
                "id": ticket.pk,
                "tracker": link.tracker.kind,
                "key": ticket.external_id,
                "url": ticket.url,
                "state": ticket.state,
                "error": ticket.error,
                "seen_after_close": link.seen_after_close,
            }
        )
    return rows


def tracker_of(*, team_id: int) -> TrackerConfig | None:
    return TrackerConfig.objects.filter(team_id=team_id).first()
