"""Who owns a finding: ownership rules, their precedence, and re-assignment when rules change.

Precedence, first that applies wins (README "Ownership"):

1. an owner set by hand by an administrator (the unowned queue);
2. the team a report *names* (``team=``), which its token must be allowed to post for;
3. the most specific matching ownership rule, specificity from most to least specific:
   exact image repository, image pattern, label with an exact value, label with a value
   pattern, exact namespace, namespace pattern; between rules of the same kind, the one with
   the longer fixed (non-wildcard) text; then the higher ``priority``; then the older rule;
4. the report's team (its token's team);
5. nobody: the finding waits in the unowned queue.

``resolve_owner`` is the one place ingest asks; ``ownership_rules.ownership_reassign`` re-applies
the rules to existing findings after a rule changes (a Celery task, idempotent).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dashboard.errors import ApplicationError
from dashboard.models import OwnershipRule, OwnerSource, Team
from scanners.base import ImageRef, ResourceRef

#: Specificity tiers, most specific first (higher wins).
_TIERS = {
    (OwnershipRule.Kind.IMAGE, False): 6,
    (OwnershipRule.Kind.IMAGE, True): 5,
    (OwnershipRule.Kind.LABEL, False): 4,
    (OwnershipRule.Kind.LABEL, True): 3,
    (OwnershipRule.Kind.NAMESPACE, False): 2,
    (OwnershipRule.Kind.NAMESPACE, True): 1,
}
#: The OCI label naming the source repository an image was built from.
OCI_SOURCE_LABEL = "org.opencontainers.image.source"
_NAMESPACE_PATTERN = re.compile(r"[a-z0-9*?]([a-z0-9*?-]*[a-z0-9*?])?")


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
