"""Who owns a finding.

Today the owner is the report's team (the token's team, or the one named with
``team=``).  Ownership rules (image patterns, namespaces, labels) plug in here:
``resolve_owner`` is the one place ingest asks.
"""

from __future__ import annotations

import dataclasses

from dashboard.models import Team
from scanners.base import ImageRef, ResourceRef


@dataclasses.dataclass(frozen=True)
class Owner:
    team: Team | None
    #: Why this team owns it, shown to people ("the report's team", "rule #3: registry.example.com/payments/*").
    reason: str


def resolve_owner(*, report_team: Team | None, image: ImageRef | None, resource: ResourceRef | None, labels: dict[str, str]) -> Owner:
    """The team that owns a finding with this image/resource/labels, reported by ``report_team``."""
    if report_team is not None:
        return Owner(team=report_team, reason="the report's team")
    return Owner(team=None, reason="no team: unowned")
