"""Demo enforcement policies: the organisation default, Payments enforcing in production, Storefront auditing,
and a CI gate decision for the latest tag of every demo image."""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from dashboard.models import Image, ImageVersion, Team
from dashboard.services.gate import gate_check
from dashboard.services.policies import policy_update

#: The images CI "asked about" after their last scan.
_GATED_IMAGES = ("payments/api", "payments/worker", "payments/ledger", "storefront/web", "storefront/checkout", "platform/ingress")


def demo_policies(*, users: dict[str, Any]) -> int:
    """Create the demo policies (each change a version) and gate each demo image once; returns the decisions made."""
    admin, champion = users["admin"], users["champion"]
    teams = {team.slug: team for team in Team.objects.all()}
    policy_update(team=None, by=admin, changes={"unknown_image": "warn"}, reason="the built-in default, written down")
    payments = teams["payments"]
    policy_update(team=payments, by=champion, changes={"epss_min": 0.5}, reason="exploitable soon is as bad as critical")
    policy_update(
        team=payments,
        by=champion,
        changes={"namespace_modes": {"payments-prod": "enforce", "payments-dev": "audit"}, "secrets": True},
        reason="block in production only, from the sprint review",
    )
    policy_update(team=teams["storefront"], by=admin, changes={"mode": "audit", "min_severity": "high"}, reason="measure first")
    made = 0
    for name in _GATED_IMAGES:
        image = Image.objects.filter(repository=name).first()
        if image is None:
            continue
        latest = ImageVersion.objects.filter(image=image).aggregate(last=Max("last_seen"))["last"]
        version = ImageVersion.objects.filter(image=image, last_seen=latest).exclude(tag="").first()
        ref = f"{image.name}:{version.tag}" if version is not None else image.name
        gate_check(ref=ref, by=None)
        made += 1
    return made
