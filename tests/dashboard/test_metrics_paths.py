"""Every metric the operations contract lists moves when its real code path runs, read back from /metrics.

The requests go through the API as a pipeline, a falcosidekick and a cluster's webhook would send them; tasks run
in-process (no broker), so a report is done by the time the POST answers.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from dashboard.services.tokens import token_create
from tests.conftest import FIXTURES, fixture_bytes
from tests.factories import EnforcementPolicyFactory, FindingFactory, ImageFactory, ImageVersionFactory, TeamFactory

pytestmark = pytest.mark.django_db(transaction=True)

ALPINE = fixture_bytes("trivy/trivy-golden_alpine-310_image.json")
ALERT = fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl").splitlines()[0]
POD = json.loads((FIXTURES / "admission-review" / "requests" / "pod_create.json").read_text())
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape() -> Samples:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def client_for(team, scope: str, **extra: str) -> APIClient:
    _, token = token_create(team=team, name=f"{team.slug} {scope}", scope=scope, **extra)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def test_a_scan_and_an_alert_posted_to_the_api_move_received_done_lag_database_time_and_alerts(team) -> None:
    ci = client_for(team, "ingest")
    before = scrape()

    scan = ci.generic("POST", "/api/v1/reports/?image=registry.example.com/payments/api:1.4.1", ALPINE, content_type="application/json")
    alert = ci.generic("POST", "/api/v1/reports/", ALERT, content_type="application/json")
    after = scrape()

    assert (scan.status_code, alert.status_code) == (202, 202)
    assert [
        moved(before, after, "vigil_reports_received_total", format="trivy", stream="scan"),
        moved(before, after, "vigil_reports_done_total", format="trivy", stream="scan"),
        moved(before, after, "vigil_ingest_lag_seconds_count", stream="scan"),
        moved(before, after, "vigil_report_database_seconds_count", stream="scan"),
        moved(before, after, "vigil_reports_received_total", format="falco", stream="runtime"),
        moved(before, after, "vigil_alerts_total", format="falco"),
    ] == [1, 1, 1, 1, 1, 1]
    assert moved(before, after, "vigil_report_database_seconds_sum", stream="scan") > 0


def test_a_gate_decision_counts_by_its_outcome_with_its_latency(team) -> None:
    image = ImageFactory(registry="registry.example.com", repository="payments/api", team=team)
    ImageVersionFactory(image=image, tag="1.4.1")
    FindingFactory(image=image, team=team, rule_id="CVE-2023-0286", severity="critical", package_name="openssl", fixed_version="3.0.8")
    EnforcementPolicyFactory(team=team, mode="enforce")
    before = scrape()

    answer = client_for(team, "read").get("/api/v1/gate/?image=registry.example.com/payments/api:1.4.1")
    after = scrape()

    assert answer.json()["decision"] == "fail"
    assert moved(before, after, "vigil_gate_decisions_total", outcome="fail") == 1
    assert moved(before, after, "vigil_gate_decision_seconds_count", outcome="fail") == 1
    assert moved(before, after, "vigil_gate_decision_seconds_sum", outcome="fail") > 0


def test_a_gate_question_that_fails_counts_as_an_error(team) -> None:
    before = scrape()

    answer = client_for(team, "read").get("/api/v1/gate/?image=")
    after = scrape()

    assert answer.status_code == 400
    assert moved(before, after, "vigil_gate_decisions_total", outcome="error") == 1


def test_admission_decisions_count_as_denied_and_skipped_with_their_latency(team) -> None:
    image = ImageFactory(registry="docker.io", repository="library/nginx", team=team)
    ImageVersionFactory(image=image, tag="1.14.2")
    FindingFactory(image=image, team=team, rule_id="CVE-2023-0286", severity="critical", package_name="openssl", fixed_version="3.0.8")
    EnforcementPolicyFactory(team=team, mode="enforce")
    webhook = client_for(team, "admission", cluster="prod")
    delete = {**POD, "request": {**POD["request"], "operation": "DELETE"}}
    before = scrape()

    denied = webhook.post("/api/v1/admission/validate", json.dumps(POD), content_type="application/json").json()
    skipped = webhook.post("/api/v1/admission/validate", json.dumps(delete), content_type="application/json").json()
    after = scrape()

    assert (denied["response"]["allowed"], skipped["response"]["allowed"]) == (False, True)
    assert [
        moved(before, after, "vigil_admission_decisions_total", outcome="denied"),
        moved(before, after, "vigil_admission_decision_seconds_count", outcome="denied"),
        moved(before, after, "vigil_admission_decisions_total", outcome="skipped"),
    ] == [1, 1, 1]


def test_a_scan_posted_with_wait_counts_its_gate_decision(team) -> None:
    before = scrape()

    answer = client_for(team, "ingest").generic(
        "POST", "/api/v1/reports/?image=registry.example.com/payments/api:1.4.1&wait=30", ALPINE, content_type="application/json"
    )
    after = scrape()

    outcome = answer.json()["gate"]["decision"]
    assert moved(before, after, "vigil_gate_decisions_total", outcome=outcome) == 1
    assert moved(before, after, "vigil_gate_decision_seconds_count", outcome=outcome) == 1
