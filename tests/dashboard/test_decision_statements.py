"""dashboard/db/decision_inputs.py and decision_findings.py: the statements a decision reads give what the ORM gives."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone

from dashboard.db.decision_findings import Wanted, decision_findings
from dashboard.db.decision_inputs import images_with_versions, namespace_rules, policies_with_teams
from dashboard.db.decision_record import insert_decision
from dashboard.models import EnforcementPolicy, Finding, GateDecision, OwnershipRule, RiskAcceptance, Status
from dashboard.selectors.enforcement import namespace_owner
from dashboard.selectors.would_block import namespace_team
from dashboard.services.tokens import token_create
from tests.factories import (
    EnforcementPolicyFactory,
    FindingFactory,
    ImageFactory,
    ImageVersionFactory,
    OwnershipRuleFactory,
    RiskAcceptanceFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def test_an_image_comes_with_the_versions_asked_for_and_as_the_orm_loads_it() -> None:
    image = ImageFactory(registry="registry.example.com", repository="payments/api", labels={"app": "api"})
    ImageVersionFactory(image=image, tag="1.4.1", digest="sha256:" + "ab" * 32)
    ImageVersionFactory(image=image, tag="1.4.2")
    ImageFactory(registry="registry.example.com", repository="payments/worker")
    rows = images_with_versions(registries={"registry.example.com"}, repositories={"payments/api"}, tags={"1.4.2", "9"}, digests=set())
    assert [(model_to_dict(found), found.first_seen, tag, digest) for found, tag, digest in rows] == [
        (model_to_dict(image), image.first_seen, "1.4.2", "")
    ]


def test_an_image_without_a_matching_version_comes_alone() -> None:
    image = ImageFactory(registry="registry.example.com", repository="payments/api")
    ImageVersionFactory(image=image, tag="1.4.1")
    rows = images_with_versions(registries={"registry.example.com"}, repositories={"payments/api"}, tags=set(), digests=set())
    assert [(found.pk, tag, digest) for found, tag, digest in rows] == [(image.pk, None, None)]


def test_the_policies_come_with_their_team_as_select_related_loads_them() -> None:
    team = TeamFactory(slug="payments")
    EnforcementPolicyFactory(team=None, mode="audit")
    EnforcementPolicyFactory(team=team, mode="enforce", namespace_modes={"prod-*": "enforce"}, rule_ids=["CVE-2024-1*"])
    EnforcementPolicyFactory(team=TeamFactory(), mode="warn")
    expected = EnforcementPolicy.objects.select_related("team").filter(Q(team__isnull=True) | Q(team=team))
    read = policies_with_teams(team_id=team.pk)
    assert {p.pk: (model_to_dict(p), p.team and p.team.slug) for p in read} == {
        p.pk: (model_to_dict(p), p.team and p.team.slug) for p in expected
    }


def test_the_namespace_owner_is_the_one_the_runtime_verdict_names() -> None:
    platform, payments = TeamFactory(slug="platform"), TeamFactory(slug="payments")
    OwnershipRuleFactory(team=platform, kind=OwnershipRule.Kind.NAMESPACE, pattern="prod-*")
    OwnershipRuleFactory(team=payments, kind=OwnershipRule.Kind.NAMESPACE, pattern="prod-payments", priority=10)
    OwnershipRuleFactory(team=payments, kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/*")
    namespaces = ["prod-payments", "prod-web", "default", ""]
    assert [namespace_owner(name) for name in namespaces] == [namespace_team(name) for name in namespaces]
    assert {rule.team.slug for rule in namespace_rules()} == {"platform", "payments"}


def test_the_findings_read_are_the_orms_with_the_latest_approved_expiry() -> None:
    image = ImageFactory(repository="payments/api")
    today = timezone.localdate()
    accepted = FindingFactory(image=image, team=image.team, status=Status.RISK_ACCEPTED, severity="high", epss=0.5, due_date=today)
    RiskAcceptanceFactory(team=image.team, findings=[accepted], expires=today + dt.timedelta(days=5))
    RiskAcceptanceFactory(team=image.team, findings=[accepted], expires=today + dt.timedelta(days=9))
    RiskAcceptanceFactory(team=image.team, findings=[accepted], expires=today + dt.timedelta(days=50), state=RiskAcceptance.State.REJECTED)
    critical = FindingFactory(image=image, team=image.team, severity="critical", fixed_version="1.2", kev=True)
    FindingFactory(image=image, team=image.team, status=Status.FALSE_POSITIVE)
    rows = decision_findings(wanted=[Wanted(image_id=image.pk, every=True)], statuses=["open", "risk_accepted"], team_ids=None)
    columns = ("id", "severity", "status", "fixed_version", "kev", "epss", "due_date", "image_id")
    expected = {row["id"]: row for row in Finding.objects.filter(status__in=["open", "risk_accepted"]).values(*columns)}
    expected[accepted.pk]["accepted_until"] = today + dt.timedelta(days=9)
    expected[critical.pk]["accepted_until"] = None
    assert {row["id"]: {name: row[name] for name in (*columns, "accepted_until")} for row in rows} == expected


def test_the_findings_read_are_only_those_of_the_teams_given() -> None:
    image = ImageFactory(repository="payments/api")
    mine = FindingFactory(image=image, team=image.team)
    FindingFactory(image=image, team=TeamFactory())
    rows = decision_findings(wanted=[Wanted(image_id=image.pk, every=True)], statuses=["open"], team_ids=[image.team_id])
    assert (
        [row["id"] for row in rows],
        decision_findings(wanted=[Wanted(image_id=image.pk, every=True)], statuses=["open"], team_ids=[]),
    ) == (
        [mine.pk],
        [],
    )


def test_a_decision_row_reads_back_as_it_was_given() -> None:
    image = ImageFactory(repository="payments/api")
    token, _ = token_create(team=image.team, name="ci", scope="read")
    values = {
        "created_at": timezone.now(),
        "point": GateDecision.Point.ADMISSION,
        "image_ref": "registry.example.com/payments/api:1.4.1",
        "image": image,
        "team_id": image.team_id,
        "policy_team": "payments",
        "policy_version": 3,
        "mode": "enforce",
        "decision": "fail",
        "reasons": [{"finding": 7, "rule_id": "CVE-2024-1", "severity": "critical", "rules": ["severity", "kev"]}],
        "reason_count": 1,
        "cluster": "prod",
        "namespace": "payments",
        "token": token,
        "actor_label": "token ci",
    }
    record = insert_decision(GateDecision(**values))
    stored = GateDecision.objects.get()
    assert (record.pk, record._state.adding) == (stored.pk, False)
    assert model_to_dict(stored) == model_to_dict(GateDecision(pk=record.pk, **values))
