"""The enforcement decision: a pure function of (policy, the image's findings, now).

Rules (a finding is a *violation* when any enabled rule matches it):

- ``severity``: severity at or above ``min_severity`` (and, with ``fix_required``, a fix is available);
- ``epss``: EPSS at or above ``epss_min`` (and, with ``fix_required``, a fix is available);
- ``kev``: the vulnerability is in the CISA KEV catalogue;
- ``sla``: the finding's due date has passed;
- ``secret``: a secret found in the image;
- ``rule_id``: the finding's rule (a policy, a misconfiguration check, a CVE) is named by the policy.

Exemptions are the team's own triage: false positives, duplicates and fixed findings never count, and a
risk acceptance counts while it runs (until its expiry date, inclusive); an expired one no longer exempts.

The mode turns violations into an answer: ``audit`` passes (the violations are still reported and recorded),
``warn`` warns, ``enforce`` fails.  An image Vigil has never seen gets ``unknown_image`` (pass, warn or fail),
never more than the mode allows: in ``audit`` it passes, in ``warn`` it warns at most.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

AUDIT = "audit"
WARN = "warn"
ENFORCE = "enforce"
MODES = (AUDIT, WARN, ENFORCE)

PASS = "pass"  # noqa: S105 - an outcome, not a password
FAIL = "fail"
OUTCOMES = (PASS, WARN, FAIL)  # least to most severe
_OUTCOME_OF_MODE = {AUDIT: PASS, WARN: WARN, ENFORCE: FAIL}

#: Severity words, most to least severe (PRODUCT.md).
SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
SEVERITY_RANK = {name: len(SEVERITIES) - index for index, name in enumerate(SEVERITIES)}

#: Rule names, as reasons list them.
RULE_SEVERITY = "severity"
RULE_EPSS = "epss"
RULE_KEV = "kev"
RULE_SLA = "sla"
RULE_SECRET = "secret"  # noqa: S105 - a rule name, not a password
RULE_ID = "rule_id"

#: Finding statuses that never block (the team's decisions, or gone).
_NEVER_BLOCK = frozenset({"false_positive", "duplicate", "fixed"})
_ACCEPTED = "risk_accepted"


@dataclasses.dataclass(frozen=True)
class Policy:
    """A policy as the decision reads it (one version of an EnforcementPolicy row, or the built-in default)."""

    mode: str = WARN
    #: (namespace pattern, mode) pairs; an exact name beats a pattern, a longer fixed text beats a shorter one.
    namespace_modes: tuple[tuple[str, str], ...] = ()
    #: Severity at or above which a finding violates; "" turns the rule off.
    min_severity: str = "critical"
    #: The severity and EPSS rules count only findings with a fix available.
    fix_required: bool = True
    kev: bool = True
    #: EPSS probability (0..1) at or above which a finding violates; None turns the rule off.
    epss_min: float | None = None
    sla_overdue: bool = False
    secrets: bool = False
    #: Rule ids (policy names, misconfiguration checks, CVEs) that always violate; shell patterns allowed.
    rule_ids: tuple[str, ...] = ()
    #: The answer for an image Vigil has never seen: pass, warn or fail (capped by the mode).
    unknown_image: str = WARN
    #: Who owns it and which version it is (reported and recorded with each decision; not used to decide).
    team: str | None = None
    team_id: int | None = None
    version: int = 0
    policy_id: int | None = None

    def mode_for(self, namespace: str = "") -> str:
        """The mode in ``namespace``: its most specific namespace mode, else the policy's mode."""
        if not namespace:
            return self.mode
        best: tuple[int, int, str] | None = None
        for pattern, mode in self.namespace_modes:
            if not fnmatch.fnmatchcase(namespace, pattern):
                continue
            exact = int(pattern == namespace)
            fixed = len(pattern.replace("*", "").replace("?", ""))
            if best is None or (exact, fixed) > best[:2]:
                best = (exact, fixed, mode)
        return best[2] if best is not None else self.mode

    def rules(self) -> dict[str, Any]:
        """The rule settings, as the API shows them."""
        return {
            "min_severity": self.min_severity,
            "fix_required": self.fix_required,
            "kev": self.kev,
            "epss_min": self.epss_min,
            "sla_overdue": self.sla_overdue,
            "secrets": self.secrets,
            "rule_ids": list(self.rule_ids),
        }


@dataclasses.dataclass(frozen=True)
class FindingFacts:
    """What the decision needs to know about one finding of the image."""

    id: int
    rule_id: str
    kind: str = "vulnerability"
    severity: str = "unknown"
    status: str = "open"
    title: str = ""
    package: str = ""
    version: str = ""
    #: The fixed version ("" when no fix is available).
    fix: str = ""
    kev: bool = False
    epss: float | None = None
    due_date: dt.date | None = None
    #: The latest expiry of the finding's approved risk acceptances (None: none).
    accepted_until: dt.date | None = None

    @property
    def fix_available(self) -> bool:
        return bool(self.fix)


@dataclasses.dataclass(frozen=True)
class Reason:
    """One finding that violates the policy, and the rules it violates."""

    finding: FindingFacts
    rules: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Decision:
    decision: str
    #: The mode that applied (the namespace's, else the policy's).
    mode: str
    reasons: tuple[Reason, ...]
    policy: Policy
    evaluated_at: dt.datetime
    unknown_image: bool = False
    namespace: str = ""
    #: Findings exempted by a running risk acceptance (the team's decision held).
    exempted: tuple[int, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision != FAIL

    @property
    def violations(self) -> int:
        return len(self.reasons)


def _counts(finding: FindingFacts, today: dt.date) -> bool:
    """Whether a finding can block at all: not a false positive, not fixed, not under a running acceptance."""
    if finding.status in _NEVER_BLOCK:
        return False
    if finding.status == _ACCEPTED:
        return finding.accepted_until is None or finding.accepted_until < today
    return True


def _rule_id_matches(rule_id: str, patterns: Iterable[str]) -> bool:
    """``rule_id`` is named: exactly or by a shell pattern (case-insensitive), ``AVD-`` prefix and ``policy/rule`` suffix aside."""
    candidates = {rule_id.lower()}
    if rule_id.upper().startswith("AVD-"):
        candidates.add(rule_id[4:].lower())
    if "/" in rule_id:
        candidates.add(rule_id.split("/", 1)[0].lower())
    return any(fnmatch.fnmatchcase(candidate, pattern.lower()) for pattern in patterns for candidate in candidates)


def violated_rules(policy: Policy, finding: FindingFacts, today: dt.date) -> tuple[str, ...]:
    """The rules of ``policy`` that ``finding`` violates (empty when it does not, or cannot, block)."""
    if not _counts(finding, today):
        return ()
    rules: list[str] = []
    fix_ok = finding.fix_available or not policy.fix_required
    if policy.min_severity and fix_ok and SEVERITY_RANK.get(finding.severity, 0) >= SEVERITY_RANK.get(policy.min_severity, 99):
        rules.append(RULE_SEVERITY)
    if policy.epss_min is not None and fix_ok and finding.epss is not None and finding.epss >= policy.epss_min:
        rules.append(RULE_EPSS)
    if policy.kev and finding.kev:
        rules.append(RULE_KEV)
    if policy.sla_overdue and finding.due_date is not None and finding.due_date < today:
        rules.append(RULE_SLA)
    if policy.secrets and finding.kind == "secret":
        rules.append(RULE_SECRET)
    if policy.rule_ids and _rule_id_matches(finding.rule_id, policy.rule_ids):
        rules.append(RULE_ID)
    return tuple(rules)


def _worst(a: str, b: str) -> str:
    return a if OUTCOMES.index(a) >= OUTCOMES.index(b) else b


def _mildest(a: str, b: str) -> str:
    return a if OUTCOMES.index(a) <= OUTCOMES.index(b) else b


def _reason_order(reason: Reason) -> tuple[Any, ...]:
    finding = reason.finding
    return (-SEVERITY_RANK.get(finding.severity, 0), not finding.kev, -(finding.epss or 0.0), finding.rule_id, finding.id)


def decide(*, policy: Policy, findings: Iterable[FindingFacts] | None, now: dt.datetime, namespace: str = "") -> Decision:
    """The decision for an image with ``findings`` (None: Vigil has never seen the image) under ``policy`` at ``now``.

    ``now`` must be timezone-aware, in the timezone whose date acceptances and due dates are counted in.
    """
    if now.tzinfo is None:
        raise ValueError("decide() needs an aware datetime")
    mode = policy.mode_for(namespace)
    ceiling = _OUTCOME_OF_MODE.get(mode, WARN)
    if findings is None:
        answer = _mildest(policy.unknown_image if policy.unknown_image in OUTCOMES else WARN, ceiling)
        return Decision(answer, mode, (), policy, now, unknown_image=True, namespace=namespace)
    today = now.date()
    reasons: list[Reason] = []
    exempted: list[int] = []
    for finding in findings:
        rules = violated_rules(policy, finding, today)
        if rules:
            reasons.append(Reason(finding, rules))
        elif finding.status == _ACCEPTED and violated_rules(policy, dataclasses.replace(finding, status="open"), today):
            exempted.append(finding.id)
    reasons.sort(key=_reason_order)
    answer = ceiling if reasons else PASS
    return Decision(answer, mode, tuple(reasons), policy, now, namespace=namespace, exempted=tuple(sorted(exempted)))


def worst_of(decisions: Iterable[Decision]) -> str:
    """The combined answer of several decisions (e.g. every container of a pod): the most severe."""
    answer = PASS
    for decision in decisions:
        answer = _worst(answer, decision.decision)
    return answer


def policy_from_mapping(values: Mapping[str, Any], **identity: Any) -> Policy:
    """A ``Policy`` from stored values (an EnforcementPolicy's rule fields or a version snapshot); unknown keys are ignored."""
    names = {field.name for field in dataclasses.fields(Policy)}
    data = {key: value for key, value in values.items() if key in names}
    if "namespace_modes" in data:
        raw = data["namespace_modes"] or {}
        pairs = raw.items() if isinstance(raw, Mapping) else raw
        data["namespace_modes"] = tuple((str(pattern), str(mode)) for pattern, mode in pairs)
    if "rule_ids" in data:
        data["rule_ids"] = tuple(str(item) for item in (data["rule_ids"] or ()))
    return Policy(**{**data, **identity})
