"""The decision table of dashboard/enforcement/decision.py: every rule, each exemption, modes, unknown images (pure, no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from dashboard.enforcement.decision import (
    FindingFacts,
    Policy,
    decide,
    policy_from_mapping,
    violated_rules,
    worst_of,
)

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
#: Every rule off: each row of the table turns on the one it tests.
NOTHING = Policy(min_severity="", fix_required=False, kev=False)

CRITICAL_FIXABLE = FindingFacts(id=1, rule_id="CVE-2023-0286", severity="critical", package="openssl", version="3.0.7", fix="3.0.8")


def finding(**changes: object) -> FindingFacts:
    return dataclasses.replace(CRITICAL_FIXABLE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "facts", "rules"),
    [
        # severity at or above the level, with and without the fix requirement
        (Policy(), finding(), ("severity",)),
        (Policy(), finding(fix=""), ()),
        (Policy(), finding(severity="high"), ()),
        (dataclasses.replace(NOTHING, min_severity="high"), finding(severity="high", fix=""), ("severity",)),
        (dataclasses.replace(NOTHING, min_severity="high"), finding(severity="critical", fix=""), ("severity",)),
        (dataclasses.replace(NOTHING, min_severity="high"), finding(severity="medium"), ()),
        (dataclasses.replace(NOTHING, min_severity="high"), finding(severity="unknown"), ()),
        (dataclasses.replace(NOTHING, min_severity="low", fix_required=True), finding(severity="medium", fix=""), ()),
        # KEV, with or without a fix
        (Policy(), finding(severity="medium", fix="", kev=True), ("kev",)),
        (dataclasses.replace(Policy(), kev=False), finding(severity="medium", kev=True), ()),
        (Policy(), finding(kev=True), ("severity", "kev")),
        # EPSS at or above the probability (the fix requirement applies to it too)
        (dataclasses.replace(NOTHING, epss_min=0.5), finding(severity="low", epss=0.5), ("epss",)),
        (dataclasses.replace(NOTHING, epss_min=0.5), finding(severity="low", epss=0.49), ()),
        (dataclasses.replace(NOTHING, epss_min=0.5), finding(severity="low", epss=None), ()),
        (dataclasses.replace(NOTHING, epss_min=0.5, fix_required=True), finding(severity="low", epss=0.9, fix=""), ()),
        # SLA overdue: due yesterday is overdue, due today is not
        (dataclasses.replace(NOTHING, sla_overdue=True), finding(due_date=TODAY - dt.timedelta(days=1)), ("sla",)),
        (dataclasses.replace(NOTHING, sla_overdue=True), finding(due_date=TODAY), ()),
        (dataclasses.replace(NOTHING, sla_overdue=True), finding(due_date=None), ()),
        # secrets in the image
        (dataclasses.replace(NOTHING, secrets=True), finding(kind="secret", rule_id="aws-access-key-id", severity="critical"), ("secret",)),
        (dataclasses.replace(NOTHING, secrets=True), finding(kind="vulnerability"), ()),
        # named policy and misconfiguration ids: exact, case, AVD- prefix, policy/rule, patterns
        (dataclasses.replace(NOTHING, rule_ids=("KSV012",)), finding(kind="misconfiguration", rule_id="ksv012"), ("rule_id",)),
        (dataclasses.replace(NOTHING, rule_ids=("KSV012",)), finding(kind="misconfiguration", rule_id="AVD-KSV-0012"), ()),
        (dataclasses.replace(NOTHING, rule_ids=("KSV-0012",)), finding(kind="misconfiguration", rule_id="AVD-KSV-0012"), ("rule_id",)),
        (
            dataclasses.replace(NOTHING, rule_ids=("disallow-latest-tag",)),
            finding(kind="policy", rule_id="disallow-latest-tag/validate-image-tag"),
            ("rule_id",),
        ),
        (dataclasses.replace(NOTHING, rule_ids=("CVE-2023-*",)), finding(), ("rule_id",)),
        (dataclasses.replace(NOTHING, rule_ids=("CVE-2024-*",)), finding(), ()),
        # every rule off: nothing violates
        (NOTHING, finding(kev=True, epss=0.99, kind="secret", due_date=TODAY - dt.timedelta(days=30)), ()),
    ],
)
def test_rules(policy: Policy, facts: FindingFacts, rules: tuple[str, ...]) -> None:
    assert violated_rules(policy, facts, TODAY) == rules


@pytest.mark.parametrize(
    ("facts", "blocks"),
    [
        (finding(status="open"), True),
        (finding(status="triaged"), True),
        (finding(status="in_progress"), True),
        (finding(status="false_positive"), False),
        (finding(status="duplicate"), False),
        (finding(status="fixed"), False),
        # a running acceptance exempts (through its expiry day); an expired one, or none on record, does not
        (finding(status="risk_accepted", accepted_until=TODAY + dt.timedelta(days=30)), False),
        (finding(status="risk_accepted", accepted_until=TODAY), False),
        (finding(status="risk_accepted", accepted_until=TODAY - dt.timedelta(days=1)), True),
        (finding(status="risk_accepted", accepted_until=None), True),
        # an acceptance attached to a finding that is open again (reopened at expiry, or pending) does not exempt it
        (finding(status="open", accepted_until=TODAY + dt.timedelta(days=30)), True),
    ],
)
def test_exemptions(facts: FindingFacts, blocks: bool) -> None:
    decision = decide(policy=dataclasses.replace(Policy(), mode="enforce"), findings=[facts], now=NOW)
    assert (decision.decision == "fail") is blocks
    assert decision.allowed is not blocks


@pytest.mark.parametrize(("mode", "answer"), [("audit", "pass"), ("warn", "warn"), ("enforce", "fail")])
def test_modes_with_a_violation(mode: str, answer: str) -> None:
    decision = decide(policy=dataclasses.replace(Policy(), mode=mode), findings=[finding()], now=NOW)
    assert (decision.decision, decision.mode, decision.violations) == (answer, mode, 1)


@pytest.mark.parametrize("mode", ["audit", "warn", "enforce"])
def test_modes_without_a_violation_pass(mode: str) -> None:
    decision = decide(policy=dataclasses.replace(Policy(), mode=mode), findings=[finding(fix="")], now=NOW)
    assert (decision.decision, decision.reasons) == ("pass", ())


def test_an_image_without_findings_passes() -> None:
    assert decide(policy=Policy(mode="enforce"), findings=[], now=NOW).decision == "pass"


@pytest.mark.parametrize(
    ("mode", "unknown_image", "answer"),
    [
        ("warn", "warn", "warn"),
        ("warn", "pass", "pass"),
        ("warn", "fail", "warn"),
        ("enforce", "warn", "warn"),
        ("enforce", "fail", "fail"),
        ("enforce", "pass", "pass"),
        ("audit", "fail", "pass"),
        ("enforce", "nonsense", "warn"),
    ],
)
def test_unknown_image(mode: str, unknown_image: str, answer: str) -> None:
    decision = decide(policy=Policy(mode=mode, unknown_image=unknown_image), findings=None, now=NOW)
    assert (decision.decision, decision.unknown_image, decision.reasons) == (answer, True, ())


def test_the_default_policy_warns_on_critical_with_a_fix_or_kev() -> None:
    findings = [
        finding(id=1),
        finding(id=2, severity="high", kev=True, fix=""),
        finding(id=3, severity="critical", fix=""),
        finding(id=4, severity="high"),
    ]
    decision = decide(policy=Policy(), findings=findings, now=NOW)
    assert decision.decision == "warn"
    assert [(reason.finding.id, reason.rules) for reason in decision.reasons] == [(1, ("severity",)), (2, ("kev",))]


def test_exempted_lists_the_running_acceptances_that_held() -> None:
    findings = [
        finding(id=7, status="risk_accepted", accepted_until=TODAY + dt.timedelta(days=3)),
        finding(id=8, status="risk_accepted", accepted_until=TODAY + dt.timedelta(days=3), fix=""),
    ]
    decision = decide(policy=Policy(), findings=findings, now=NOW)
    assert (decision.decision, decision.exempted) == ("pass", (7,))


def test_reasons_come_most_severe_first() -> None:
    policy = dataclasses.replace(NOTHING, min_severity="low")
    findings = [
        finding(id=1, severity="low", rule_id="CVE-1"),
        finding(id=2, severity="critical", rule_id="CVE-2"),
        finding(id=3, severity="high", rule_id="CVE-3", kev=True),
        finding(id=4, severity="high", rule_id="CVE-4", epss=0.7),
        finding(id=5, severity="high", rule_id="CVE-5"),
    ]
    decision = decide(policy=policy, findings=findings, now=NOW)
    assert [reason.finding.id for reason in decision.reasons] == [2, 3, 4, 5, 1]


@pytest.mark.parametrize(
    ("namespace", "mode"),
    [
        ("", "warn"),
        ("payments-prod", "enforce"),
        ("payments-dev", "warn"),  # "payments-*" has the longer fixed text
        ("storefront-dev", "audit"),
        ("payments-prod-eu", "warn"),
        ("other", "warn"),
    ],
)
def test_namespace_modes(namespace: str, mode: str) -> None:
    policy = Policy(mode="warn", namespace_modes=(("*-dev", "audit"), ("payments-*", "warn"), ("payments-prod", "enforce")))
    assert policy.mode_for(namespace) == mode
    assert decide(policy=policy, findings=[finding()], now=NOW, namespace=namespace).mode == mode


def test_a_longer_fixed_pattern_wins_over_a_shorter_one() -> None:
    policy = Policy(mode="warn", namespace_modes=(("pay*", "audit"), ("payments-*", "enforce")))
    assert policy.mode_for("payments-prod") == "enforce"


def test_worst_of_several_decisions() -> None:
    warn = decide(policy=Policy(), findings=[finding()], now=NOW)
    fail = decide(policy=Policy(mode="enforce"), findings=[finding()], now=NOW)
    passed = decide(policy=Policy(), findings=[], now=NOW)
    assert (worst_of([passed, warn]), worst_of([warn, fail, passed]), worst_of([])) == ("warn", "fail", "pass")


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(policy=Policy(), findings=[], now=dt.datetime(2026, 12, 2))


def test_policy_from_stored_values() -> None:
    values = {"mode": "enforce", "namespace_modes": {"prod": "enforce"}, "rule_ids": ["KSV012"], "epss_min": 0.3, "id": 9}
    policy = policy_from_mapping(values, team="payments", version=4)
    assert (policy.mode, policy.namespace_modes, policy.rule_ids, policy.epss_min, policy.team, policy.version) == (
        "enforce",
        (("prod", "enforce"),),
        ("KSV012",),
        0.3,
        "payments",
        4,
    )
