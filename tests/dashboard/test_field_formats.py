"""Formats met in the field, end to end: a Grype file of only matches, a cluster-level policy-reporter
result, and CycloneDX VEX not_affected applied by a triage rule only when a team asks for it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.models import Finding, Role, Status
from dashboard.services.tokens import token_create
from dashboard.services.triage_rules import rule_create
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

VEX = "cyclonedx/secobserve_vex_integrated.json"


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION).user


def post(team, name: str, query: str = ""):
    _, token = token_create(team=team, name=f"sender {name}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.generic("POST", f"/api/v1/reports/{query}", fixture_bytes(name), content_type="application/json")


def test_a_grype_file_of_only_matches_is_accepted_and_stored_as_grype(team, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(team, "grype/anchore_grype_epss_problem.json", "?image=registry.example.com/payments/api:2.0.0")

    finding = Finding.objects.get()
    assert response.status_code == 202
    assert (finding.source, finding.rule_id, finding.package_name) == ("grype", "GHSA-4374-p667-p6c8", "golang.org/x/net")


def test_a_cluster_level_policy_reporter_result_is_accepted_on_the_cluster(team, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(team, "kyverno/policy-reporter_webhook_cluster.json")

    finding = Finding.objects.get()
    assert response.status_code == 202
    assert (finding.rule_id, finding.resource_kind, finding.resource_name) == ("audit", "Cluster", "")


def test_vex_not_affected_stays_a_visible_hint_without_a_rule(team) -> None:
    ingest(fixture_bytes(VEX), team="payments", image="registry.example.com/payments/api:1.0.0")

    hinted = Finding.objects.get(rule_id="CVE-2023-49083")
    assert (hinted.status, hinted.status_hint) == (Status.OPEN, "not_affected")


def test_a_rule_applying_vex_marks_not_affected_false_positive_with_the_justification(team, champion) -> None:
    rule_create(by=champion, team=team, name="trust vendor VEX", action="false_positive", reason="vendor VEX", match_vex_not_affected=True)

    ingest(fixture_bytes(VEX), team="payments", image="registry.example.com/payments/api:1.0.0")

    marked = Finding.objects.get(rule_id="CVE-2023-49083")
    event = marked.events.get(type="status")
    assert (marked.status, marked.status_hint) == (Status.FALSE_POSITIVE, "not_affected")
    assert event.reason.endswith("VEX not_affected, requires_configuration")
    assert set(Finding.objects.exclude(pk=marked.pk).values_list("status", flat=True)) == {Status.OPEN}


def test_a_vex_rule_must_mark_false_positives(team, champion) -> None:
    with pytest.raises(ApplicationError, match="marks findings false positive"):
        rule_create(by=champion, team=team, name="x", action="set_severity", severity="low", reason="r", match_vex_not_affected=True)
