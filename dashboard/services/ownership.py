"""Who owns a finding: where ingest asks (``resolve_owner``) and how rule patterns are checked.

The rule engine and its precedence live in ``dashboard.selectors.ownership`` (a read);
changing rules and re-assigning findings in ``dashboard.services.ownership_rules``.
"""

from __future__ import annotations

import re
from typing import Any

from dashboard.errors import ApplicationError
from dashboard.models import OwnershipRule, Team
from dashboard.selectors.ownership import OCI_SOURCE_LABEL, Owner, RuleSet, decide_owner
from scanners.base import ImageRef, ResourceRef

_NAMESPACE_PATTERN = re.compile(r"[a-z0-9*?]([a-z0-9*?-]*[a-z0-9*?])?")

__all__ = ["Owner", "RuleSet", "resolve_owner", "rules_for", "validate_pattern"]


def rules_for(report: Any) -> RuleSet:
    """The rule set for one report, loaded once and kept on the report object while it is applied."""
    rules: RuleSet | None = getattr(report, "_ownership_rules", None)
    if rules is None:
        rules = RuleSet.load()
        report._ownership_rules = rules
    return rules


def resolve_owner(
    *,
    report_team: Team | None,
    image: ImageRef | None,
    resource: ResourceRef | None,
    labels: dict[str, str],
    named: bool = False,
    rules: RuleSet | None = None,
) -> Owner:
    """The team that owns a finding with this image/resource/labels, reported by ``report_team``.

    ``named``: the report named its team explicitly (``team=``), which then wins over rules.
    Pass ``rules`` (``RuleSet.load()``) when resolving many findings at once.
    """
    return decide_owner(
        rules=rules if rules is not None else RuleSet.load(),
        image=image.name if image is not None else "",
        namespace=resource.namespace if resource is not None else "",
        labels=labels or {},
        report_team=report_team,
        named=named,
    )


def validate_pattern(*, kind: str, pattern: str) -> str:
    """The cleaned pattern, or an ApplicationError saying what is wrong with it."""
    pattern = (pattern or "").strip()
    if kind not in OwnershipRule.Kind.values:
        raise ApplicationError(f"unknown rule kind {kind!r}; use one of {', '.join(OwnershipRule.Kind.values)}", code="invalid_kind")
    if not pattern or any(char.isspace() for char in pattern):
        raise ApplicationError("a pattern is needed, without spaces", code="invalid_pattern")
    if len(pattern) > 500:
        raise ApplicationError("the pattern is longer than 500 characters", code="invalid_pattern")
    if kind == OwnershipRule.Kind.IMAGE:
        last = pattern.rsplit("/", 1)[-1]
        if "@" in pattern or ":" in last:
            raise ApplicationError(
                "an image pattern names a repository, without tag or digest (registry.example.com/payments/*)", code="invalid_pattern"
            )
        if pattern.replace("*", "").replace("?", "").replace("/", "") == "":
            raise ApplicationError("an image pattern needs some fixed text: it would match every image", code="invalid_pattern")
    elif kind == OwnershipRule.Kind.NAMESPACE:
        if not _NAMESPACE_PATTERN.fullmatch(pattern) or pattern.strip("*?") == "":
            raise ApplicationError(
                "a namespace pattern is a Kubernetes namespace name, optionally with * or ? (payments, payments-*)", code="invalid_pattern"
            )
    else:
        key, sep, value = pattern.partition("=")
        if not sep or not key or any(char in "*?" for char in key) or not value:
            raise ApplicationError(
                f"a label pattern is key=value, the value may use * or ? (team=payments, {OCI_SOURCE_LABEL}=https://github.com/acme/*)",
                code="invalid_pattern",
            )
    return pattern
