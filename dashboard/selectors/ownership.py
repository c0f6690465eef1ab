"""Reads for ownership: the rule engine (matching and precedence), the rules, why a finding
or an image has its owner, and the unowned queue.

Precedence, first that applies wins (README "Ownership"):

1. an owner set by hand by an administrator (the unowned queue);
2. the team a report *names* (``team=``), which its token must be allowed to post for;
3. the most specific matching ownership rule, specificity from most to least specific:
   exact image repository, image pattern, label with an exact value, label with a value
   pattern, exact namespace, namespace pattern; between rules of the same tier, the one with
   the longer fixed (non-wildcard) text; then the higher ``priority``; then the older rule;
4. the report's team (its token's team);
5. nobody: the finding waits in the unowned queue.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404

from dashboard.models import ACTIVE_STATUSES, Finding, Image, OwnershipRule, OwnerSource, Team
from dashboard.models.access import sees_everything, visible_teams

#: Specificity tiers, most specific first (higher wins).
_TIERS: dict[tuple[str, bool], int] = {
    (OwnershipRule.Kind.IMAGE, False): 6,
    (OwnershipRule.Kind.IMAGE, True): 5,
    (OwnershipRule.Kind.LABEL, False): 4,
    (OwnershipRule.Kind.LABEL, True): 3,
    (OwnershipRule.Kind.NAMESPACE, False): 2,
    (OwnershipRule.Kind.NAMESPACE, True): 1,
}
#: The OCI label naming the source repository an image was built from.
OCI_SOURCE_LABEL = "org.opencontainers.image.source"


@dataclasses.dataclass(frozen=True)
class Owner:
    team: Team | None
    #: Why this team owns it, shown to people ("rule #3: image registry.example.com/payments/* matches ...").
    reason: str
    source: str = OwnerSource.NONE
    rule: OwnershipRule | None = None


def _glob_regex(pattern: str, *, slash_is_special: bool) -> re.Pattern[str]:
    """``*`` any run of characters (not ``/`` in image patterns, where ``**`` crosses it), ``?`` one character."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*" and pattern[index : index + 2] == "**":
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*" if slash_is_special else ".*")
        elif char == "?":
            out.append("[^/]" if slash_is_special else ".")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _literal_length(text: str) -> int:
    return sum(1 for char in text if char not in "*?")


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    rule: OwnershipRule
    regex: re.Pattern[str]
    label_key: str
    tier: int
    literal: int

    @classmethod
    def compile(cls, rule: OwnershipRule) -> CompiledRule:
        key, value = "", rule.pattern
        if rule.kind == OwnershipRule.Kind.LABEL:
            key, _, value = rule.pattern.partition("=")
        glob = any(char in "*?" for char in value)
        regex = _glob_regex(value, slash_is_special=rule.kind == OwnershipRule.Kind.IMAGE)
        return cls(rule=rule, regex=regex, label_key=key, tier=_TIERS[(rule.kind, glob)], literal=_literal_length(rule.pattern))

    @property
    def precedence(self) -> tuple[int, int, int, int]:
        """Sort key: most specific first, then higher priority, then the older rule."""
        return (-self.tier, -self.literal, -self.rule.priority, self.rule.pk or 0)

    def matches(self, *, image: str, namespace: str, labels: Mapping[str, str]) -> str | None:
        """The value this rule matched (an image name, a namespace, ``key=value``), or None."""
        kind = self.rule.kind
        if kind == OwnershipRule.Kind.IMAGE:
            return image if image and self.regex.match(image) else None
        if kind == OwnershipRule.Kind.NAMESPACE:
            return namespace if namespace and self.regex.match(namespace) else None
        value = labels.get(self.label_key)
        if value is None or not self.regex.match(str(value)):
            return None
        return f"{self.label_key}={value}"

    def explain(self, matched: str) -> str:
        label = self.rule.get_kind_display()
        return f"rule #{self.rule.pk}: {label} {self.rule.pattern} matches {matched}"


class RuleSet:
    """Every ownership rule, compiled and sorted by precedence.  Load once per report, not per finding."""

    def __init__(self, rules: Iterable[OwnershipRule]) -> None:
        self.rules = sorted((CompiledRule.compile(rule) for rule in rules), key=lambda compiled: compiled.precedence)

    @classmethod
    def load(cls) -> RuleSet:
        return cls(OwnershipRule.objects.select_related("team"))

    def evaluate(self, *, image: str, namespace: str, labels: Mapping[str, str]) -> list[tuple[CompiledRule, str]]:
        """Every matching rule with what it matched, the winner first."""
        out = []
        for compiled in self.rules:
            matched = compiled.matches(image=image, namespace=namespace, labels=labels)
            if matched is not None:
                out.append((compiled, matched))
        return out

    def first(self, *, image: str, namespace: str, labels: Mapping[str, str]) -> tuple[CompiledRule, str] | None:
        for compiled in self.rules:
            matched = compiled.matches(image=image, namespace=namespace, labels=labels)
            if matched is not None:
                return compiled, matched
        return None


def decide_owner(
    *,
    rules: RuleSet,
    image: str,
    namespace: str,
    labels: Mapping[str, str],
    report_team: Team | None,
    named: bool,
) -> Owner:
    if named and report_team is not None:
        return Owner(team=report_team, reason=f"named by the report (team={report_team.slug})", source=OwnerSource.NAMED)
    hit = rules.first(image=image, namespace=namespace, labels=labels)
    if hit is not None:
        compiled, matched = hit
        return Owner(team=compiled.rule.team, reason=compiled.explain(matched), source=OwnerSource.RULE, rule=compiled.rule)
    if report_team is not None:
        return Owner(team=report_team, reason="the report's team (no ownership rule matches)", source=OwnerSource.REPORT)
    return Owner(team=None, reason="no ownership rule matches and the report has no team", source=OwnerSource.NONE)


def image_name(registry: str | None, repository: str | None) -> str:
    if not repository:
        return ""
    return f"{registry}/{repository}" if registry else repository


# --- pages ---------------------------------------------------------------------------------------


def rule_list(*, user: Any) -> QuerySet[OwnershipRule]:
    """Administrators see every rule; others the rules of the teams they can read.  With open findings owned."""
    qs = OwnershipRule.objects.select_related("team", "created_by").annotate(
        owned=Count("findings", filter=Q(findings__status__in=ACTIVE_STATUSES))
    )
    if not sees_everything(user):
        qs = qs.filter(team__in=visible_teams(user))
    return qs.order_by("kind", "pattern")


def rule_get(*, user: Any, pk: int) -> OwnershipRule:
    rule = rule_list(user=user).filter(pk=pk).first()
    if rule is None:
        raise Http404("no such rule")
    return rule


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Why something has its owner: its current team and how it was decided, and what every rule says now."""

    team: Team | None
    source: str
    reason: str
    rule: OwnershipRule | None
    image: str
    namespace: str
    labels: dict[str, str]
    #: Every matching rule with what it matched, in precedence order (the first one wins).
    matches: list[tuple[CompiledRule, str]]
    #: The owner the rules would give now (differs from ``team`` for owners set by hand or named by a report).
    rules_say: Owner
    finding: Finding | None = None

    @property
    def source_label(self) -> str:
        return str(OwnerSource(self.source).label) if self.source in OwnerSource.values else "not recorded (before ownership rules)"


def explain_finding(*, user: Any, pk: int) -> Explanation:
    finding = (
        Finding.objects.visible_to(user).select_related("team", "owner_rule__team", "image", "last_report__team").filter(pk=pk).first()
    )
    if finding is None:
        raise Http404("no such finding")
    image = finding.image
    name = image.name if image is not None else ""
    labels = dict((image.labels or {}) if image is not None else {})
    rules = RuleSet.load()
    report = finding.last_report
    return Explanation(
        team=finding.team,
        source=finding.owner_source or "",
        reason=finding.owner_reason,
        rule=finding.owner_rule,
        image=name,
        namespace=finding.resource_namespace,
        labels=labels,
        matches=rules.evaluate(image=name, namespace=finding.resource_namespace, labels=labels),
        rules_say=decide_owner(
            rules=rules,
            image=name,
            namespace=finding.resource_namespace,
            labels=labels,
            report_team=report.team if report is not None else None,
            named=False,
        ),
        finding=finding,
    )


def explain_image(*, user: Any, image: Image) -> Explanation:
    """An image's team: the image and label rules (namespaces do not apply), else the team of its first report."""
    labels = dict(image.labels or {})
    rules = RuleSet.load()
    matches = rules.evaluate(image=image.name, namespace="", labels=labels)
    owner = decide_owner(rules=rules, image=image.name, namespace="", labels=labels, report_team=image.team, named=False)
    rule = matches[0][0].rule if matches else None
    if rule is not None and rule.team_id == image.team_id:
        source, reason = OwnerSource.RULE, matches[0][0].explain(matches[0][1])
    elif image.team is not None:
        source, reason = OwnerSource.REPORT, "the team of the report that first carried this image"
        rule = None
    else:
        source, reason, rule = OwnerSource.NONE, "no image or label rule matches and no report named a team", None
    return Explanation(
        team=image.team,
        source=source,
        reason=reason,
        rule=rule,
        image=image.name,
        namespace="",
        labels=labels,
        matches=matches,
        rules_say=owner,
    )


def unowned_queue(*, user: Any, limit: int = 50) -> dict[str, Any]:
    """Open unowned findings grouped by image and by namespace (administrators only: others see nothing)."""
    if not sees_everything(user):
        return {"total": 0, "images": [], "namespaces": [], "other": 0}
    unowned = Finding.objects.visible_to(user).filter(team__isnull=True, status__in=ACTIVE_STATUSES)
    images: list[dict[str, Any]] = [
        {**row, "name": image_name(row["image__registry"], row["image__repository"])}
        for row in unowned.filter(image__isnull=False)
        .order_by()
        .values("image_id", "image__registry", "image__repository")
        .annotate(n=Count("id"), last=Max("last_seen"))
        .order_by("-n", "image__repository")[:limit]
    ]
    namespaces = list(
        unowned.filter(image__isnull=True)
        .exclude(resource_namespace="")
        .order_by()
        .values("resource_namespace")
        .annotate(n=Count("id"), last=Max("last_seen"))
        .order_by("-n", "resource_namespace")[:limit]
    )
    return {
        "total": unowned.count(),
        "images": images,
        "namespaces": namespaces,
        "other": unowned.filter(image__isnull=True, resource_namespace="").count(),
    }
