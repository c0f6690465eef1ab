"""dashboard/selectors/enforcement.py: the inputs of a decision, read in a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard.api.authentication import TokenPrincipal
from dashboard.enforcement.decision import Policy, decide
from dashboard.models import RiskAcceptance, Status
from dashboard.selectors.enforcement import image_findings, images_findings, policy_for
from dashboard.services.tokens import token_create
from tests.factories import (
    EnforcementPolicyFactory,
    FindingFactory,
    ImageFactory,
    ImageVersionFactory,
    RiskAcceptanceFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def test_an_image_never_seen_has_no_findings_at_all() -> None:
    answer = image_findings(ref="registry.example.com/nobody/app:1.0")
    assert (answer.known, answer.findings, answer.image) == (False, None, None)


def test_an_unseen_tag_of_a_known_image_is_unknown() -> None:
    image = ImageFactory(repository="payments/api")
    ImageVersionFactory(image=image, tag="1.4.1")
    assert image_findings(ref="registry.example.com/payments/api:1.4.1").known is True
    assert image_findings(ref="registry.example.com/payments/api:9.9.9").known is False
    assert image_findings(ref="registry.example.com/payments/api").known is True


def test_a_digest_is_matched_exactly() -> None:
    image = ImageFactory(repository="payments/api")
    digest = "sha256:" + "ab" * 32
    ImageVersionFactory(image=image, tag="1.4.1", digest=digest)
    assert image_findings(ref=f"registry.example.com/payments/api@{digest}").known is True
    assert image_findings(ref="registry.example.com/payments/api@sha256:" + "cd" * 32).known is False


def test_findings_carry_status_fix_intel_due_date_and_acceptance_expiry() -> None:
    image = ImageFactory(repository="payments/api")
    today = timezone.localdate()
    open_one = FindingFactory(
        image=image, team=image.team, severity="critical", fixed_version="3.0.8", kev=True, epss=0.4, due_date=today, rule_id="CVE-1"
    )
    accepted = FindingFactory(image=image, team=image.team, status=Status.RISK_ACCEPTED, rule_id="CVE-2")
    RiskAcceptanceFactory(team=image.team, findings=[accepted], expires=today + dt.timedelta(days=5))
    RiskAcceptanceFactory(team=image.team, findings=[accepted], expires=today + dt.timedelta(days=50), state=RiskAcceptance.State.REJECTED)
    FindingFactory(image=image, team=image.team, status=Status.FALSE_POSITIVE, rule_id="CVE-3")
    FindingFactory(image=image, team=image.team, status=Status.FIXED, rule_id="CVE-4")
    facts = {item.rule_id: item for item in image_findings(ref="registry.example.com/payments/api").findings or ()}
    assert sorted(facts) == ["CVE-1", "CVE-2"]
    first = facts["CVE-1"]
    expected = (open_one.pk, "critical", "3.0.8", True, 0.4, today)
    assert (first.id, first.severity, first.fix, first.kev, first.epss, first.due_date) == expected
    assert (facts["CVE-2"].status, facts["CVE-2"].accepted_until) == ("risk_accepted", today + dt.timedelta(days=5))


def test_a_token_reads_only_its_teams_images() -> None:
    mine, theirs = TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    FindingFactory(image=ImageFactory(repository="payments/api", team=mine), team=mine)
    FindingFactory(image=ImageFactory(repository="storefront/web", team=theirs), team=theirs)
    token, _ = token_create(team=mine, name="ci", scope="read")
    principal = TokenPrincipal(token)
    answers = images_findings(refs=["registry.example.com/payments/api", "registry.example.com/storefront/web"], user=principal)
    assert [answers[ref].known for ref in answers] == [True, False]
    assert len(answers["registry.example.com/payments/api"].findings or ()) == 1


def test_many_images_in_a_constant_number_of_queries(django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    refs = []
    for n in range(6):
        image = ImageFactory(repository=f"payments/app{n}")
        ImageVersionFactory(image=image, tag="1.0")
        for _ in range(3):
            finding = FindingFactory(image=image, team=image.team, status=Status.RISK_ACCEPTED)
            RiskAcceptanceFactory(team=image.team, findings=[finding])
        refs.append(f"registry.example.com/payments/app{n}:1.0")
    with django_assert_max_num_queries(3):
        answers = images_findings(refs=[*refs, "not an image ref", "docker.io/library/alpine:3"])
    assert sum(len(answer.findings or ()) for answer in answers.values()) == 18


def test_whose_policy_decides() -> None:
    team, other = TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    assert (policy_for(team_id=team.pk).team, policy_for(team_id=team.pk).version, policy_for(team_id=None).mode) == (None, 0, "warn")
    EnforcementPolicyFactory(team=None, mode="audit", version=3)
    EnforcementPolicyFactory(team=team, mode="enforce", version=2)
    own = policy_for(team_id=team.pk)
    assert (own.mode, own.team, own.version) == ("enforce", "payments", 2)
    assert (policy_for(team_id=other.pk).mode, policy_for(team_id=other.pk).team) == ("audit", None)
    assert policy_for(team_id=None).version == 3


POLICIES = [
    Policy(),
    Policy(min_severity="high", fix_required=False, kev=False),
    Policy(min_severity="medium", fix_required=True, kev=True, epss_min=0.3),
    Policy(min_severity="", kev=False, epss_min=0.05, fix_required=False),
    Policy(min_severity="", kev=False, sla_overdue=True),
    Policy(min_severity="", kev=False, secrets=True),
    Policy(min_severity="low", kev=True, sla_overdue=True, secrets=True, epss_min=0.9),
    Policy(min_severity="", kev=False, rule_ids=("CVE-2024-1*", "AVD-KSV-0017")),
    Policy(min_severity="", kev=False),
]


@pytest.fixture
def varied_image():
    """One image with findings of every kind a rule looks at, open, accepted (running and expired) and false positive."""
    image = ImageFactory(repository="payments/api")
    today = timezone.localdate()
    week = dt.timedelta(days=7)
    for n, (severity, fix, kev, epss, due) in enumerate(
        [
            ("critical", "3.0.8", False, None, today + week),
            ("critical", "", True, 0.5, today - week),
            ("high", "1.2", False, 0.31, None),
            ("high", "", False, 0.95, today + week),
            ("medium", "2.0", True, None, today - week),
            ("low", "", False, 0.01, today - dt.timedelta(days=1)),
            ("unknown", "9", False, None, None),
        ]
    ):
        FindingFactory(
            image=image, team=image.team, rule_id=f"CVE-2024-{n}", severity=severity, fixed_version=fix, kev=kev, epss=epss, due_date=due
        )
    FindingFactory(image=image, team=image.team, rule_id="AVD-KSV-0017", kind="misconfiguration", severity="low")
    FindingFactory(image=image, team=image.team, rule_id="aws-access-key-id", kind="secret", severity="critical", fixed_version="")
    running = FindingFactory(
        image=image, team=image.team, rule_id="CVE-2023-7", severity="critical", fixed_version="1", status=Status.RISK_ACCEPTED
    )
    RiskAcceptanceFactory(team=image.team, findings=[running], expires=today + week)
    expired = FindingFactory(image=image, team=image.team, rule_id="CVE-2023-8", severity="high", kev=True, status=Status.RISK_ACCEPTED)
    RiskAcceptanceFactory(team=image.team, findings=[expired], expires=today - week)
    FindingFactory(image=image, team=image.team, rule_id="CVE-2023-9", severity="critical", fixed_version="1", status=Status.FALSE_POSITIVE)
    return image


def summary(decision) -> tuple:
    return (decision.decision, [(r.finding.id, r.rules) for r in decision.reasons], decision.exempted)


@pytest.mark.parametrize("policy", POLICIES, ids=[f"policy-{n}" for n in range(len(POLICIES))])
def test_reading_only_what_may_violate_the_policy_decides_as_reading_every_finding(varied_image, policy) -> None:
    now = timezone.localtime()
    ref = "registry.example.com/payments/api"

    everything = image_findings(ref=ref).findings
    selected = image_findings(ref=ref, policy_of=lambda image: policy, today=now.date()).findings

    assert summary(decide(policy=policy, findings=selected, now=now)) == summary(decide(policy=policy, findings=everything, now=now))
    assert len(selected or ()) <= len(everything or ())
