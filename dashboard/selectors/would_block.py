"""Whose policy decides in a namespace, and what it says of an image caught at runtime ("would have been blocked").

The runtime point of enforcement decides nothing: a runtime alert's image is decided on now, with the policy that
admission would use for its namespace, so the finding page can say whether the deploy would have been stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.utils import timezone

from dashboard.enforcement.decision import ENFORCE, FAIL, Decision, decide
from dashboard.models import Finding, FindingOccurrence, OwnershipRule
from dashboard.selectors.enforcement import image_findings, policy_for
from dashboard.selectors.ownership import RuleSet, decide_owner


def namespace_team(namespace: str) -> int | None:
    """The team owning ``namespace`` by the namespace ownership rules (None when no rule claims it; one query)."""
    if not namespace:
        return None
    rules = RuleSet(OwnershipRule.objects.filter(kind=OwnershipRule.Kind.NAMESPACE).select_related("team"))
    owner = decide_owner(rules=rules, image="", namespace=namespace, labels={}, report_team=None, named=False)
    return owner.team.pk if owner.team is not None else None


@dataclasses.dataclass(frozen=True)
class RuntimeVerdict:
    ref: str
    decision: Decision

    @property
    def would_block(self) -> bool:
        """Would the current policy have failed the image at admission (its violations, were the mode enforce)?"""
        return bool(self.decision.reasons) or (self.decision.unknown_image and self.decision.decision == FAIL)

    @property
    def blocked_in_its_namespace(self) -> bool:
        """Would admission have denied it in its namespace, with the namespace's mode as it is now?"""
        return self.decision.decision == FAIL and self.decision.mode == ENFORCE


def runtime_verdict(*, finding: Finding, now: dt.datetime | None = None) -> RuntimeVerdict | None:
    """The decision now on the image of a runtime finding (its latest tag or digest); None without an image."""
    if finding.image is None:
        return None
    version = FindingOccurrence.objects.filter(finding=finding).exclude(tag="", digest="").order_by("-last_seen").first()
    ref = finding.image.name
    if version is not None:
        ref += (f":{version.tag}" if version.tag else "") + (f"@{version.digest}" if version.digest else "")
    inputs = image_findings(ref=ref, user=None)
    team_id = namespace_team(finding.resource_namespace) or finding.image.team_id
    moment = timezone.localtime(now or timezone.now())
    return RuntimeVerdict(
        ref, decide(policy=policy_for(team_id=team_id), findings=inputs.findings, now=moment, namespace=finding.resource_namespace)
    )


def verdict_for_page(finding: Any) -> RuntimeVerdict | None:
    """The verdict the finding page shows: for runtime findings only."""
    return runtime_verdict(finding=finding) if finding.stream == "runtime" else None
