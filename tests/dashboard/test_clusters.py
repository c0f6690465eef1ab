"""Clusters are a dimension: a token's binding or ``cluster=`` places what a report found in its cluster."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import Finding, Report, Status
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def lone_result(**changes: str) -> bytes:
    return json.dumps({**json.loads(fixture_bytes("kyverno/policy-reporter_webhook_fail.json")), **changes}).encode()


def apply(data: bytes, *, cluster: str = "", token=None, format_name: str = "kyverno") -> Report:
    report, _ = report_submit(data=data, token=token, cluster=cluster, format_name=format_name, enqueue_now=False, deduplicate=False)
    report_process(report.pk)
    report.refresh_from_db()
    return report


@pytest.fixture
def team():
    return TeamFactory(slug="platform")


def test_without_clusters_a_pass_closes_the_failure_reported_from_anywhere(team) -> None:
    apply(lone_result())
    passed = apply(lone_result(status="pass"))
    assert passed.counts["fixed"] == 1
    assert Finding.objects.get().status == Status.FIXED


def test_a_pass_reported_from_cluster_a_never_closes_a_failure_in_cluster_b(team) -> None:
    apply(lone_result(), cluster="b")
    passed = apply(lone_result(status="pass"), cluster="a")
    finding = Finding.objects.get()
    assert (passed.counts["fixed"], finding.status, finding.resource_cluster) == (0, Status.OPEN, "b")


def test_a_pass_from_the_same_cluster_closes_its_failure(team) -> None:
    apply(lone_result(), cluster="b")
    passed = apply(lone_result(status="pass"), cluster="b")
    assert (passed.counts["fixed"], Finding.objects.get().status) == (1, Status.FIXED)


def test_the_same_failure_in_two_clusters_is_two_findings_with_their_own_scopes(team) -> None:
    apply(lone_result(), cluster="a")
    apply(lone_result(), cluster="b")
    rows = sorted(Finding.objects.values_list("resource_cluster", "scope_key"))
    assert rows == [
        ("a", "admission|kyverno|policy:CVE-2025-47907|resource:a/test/Deployment/test-app"),
        ("b", "admission|kyverno|policy:CVE-2025-47907|resource:b/test/Deployment/test-app"),
    ]


def test_a_snapshot_policy_report_closes_by_absence_only_in_its_own_cluster(team) -> None:
    document = json.loads(fixture_bytes("kyverno/openreports_single_report.json"))
    apply(json.dumps(document).encode(), cluster="a", format_name="")
    apply(json.dumps(document).encode(), cluster="b", format_name="")
    document["results"][1]["result"] = "pass"  # CVE-2025-47907 passes in cluster a
    passed = apply(json.dumps(document).encode(), cluster="a", format_name="")
    fixed = Finding.objects.filter(status=Status.FIXED)
    assert passed.counts["fixed"] == 1
    assert list(fixed.values_list("rule_id", "resource_cluster")) == [("CVE-2025-47907", "a")]
    assert Finding.objects.filter(rule_id="CVE-2025-47907", resource_cluster="b", status=Status.OPEN).exists()


def test_a_token_bound_to_a_cluster_places_its_reports_there(team) -> None:
    token, _ = token_create(team=team, name="prod kyverno", cluster="prod-eu")
    apply(lone_result(), token=token)
    assert Finding.objects.get().resource_cluster == "prod-eu"


def test_vulnerabilities_keep_their_image_identity_across_clusters(team) -> None:
    data = fixture_bytes("trivy-operator/vulnerabilityreport_many.json")
    apply(data, cluster="a", format_name="")
    count = Finding.objects.count()
    apply(data, cluster="b", format_name="")
    assert Finding.objects.count() == count


def test_a_bound_token_cannot_claim_another_cluster_over_the_api(team) -> None:
    _, plaintext = token_create(team=team, name="prod kyverno", cluster="prod-eu")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    other = client.post("/api/v1/reports/?format=kyverno&cluster=staging", lone_result(), content_type="application/json")
    same = client.post("/api/v1/reports/?format=kyverno&cluster=prod-eu", lone_result(), content_type="application/json")
    assert (other.status_code, other.json()["error"]["code"]) == (403, "forbidden_cluster")
    assert same.status_code == 202


def test_an_unbound_token_names_its_cluster_with_a_query_parameter(team) -> None:
    _, plaintext = token_create(team=team, name="kyverno")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    answer = client.post("/api/v1/reports/?format=kyverno&cluster=staging", lone_result(), content_type="application/json")
    bad = client.post("/api/v1/reports/?format=kyverno&cluster=no%20spaces", lone_result(), content_type="application/json")
    assert answer.status_code == 202
    assert Report.objects.get(pk=answer.json()["id"]).cluster == "staging"
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cluster")
