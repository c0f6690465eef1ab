"""The validating admission webhook on the Kubernetes documentation's requests (fixtures/admission-review/requests)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.models import Finding, GateDecision, OwnershipRule, RiskAcceptance, Status, WorkloadSighting
from dashboard.services.admission_repeats import repeats_flush
from dashboard.services.running import forget_written
from dashboard.services.tokens import token_create
from scanners.admission_request import read_request
from scanners.base import ImageRef
from tests.conftest import FIXTURES
from tests.factories import (
    EnforcementPolicyFactory,
    FindingFactory,
    ImageFactory,
    ImageVersionFactory,
    OwnershipRuleFactory,
    RiskAcceptanceFactory,
    TeamFactory,
    TopicFactory,
    TrainingModuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

REQUESTS = FIXTURES / "admission-review" / "requests"
DECIDED = [
    "pod_create.json",
    "pod_init_containers_create.json",
    "pod_ephemeral_containers_update.json",
    "deployment_update.json",
    "statefulset_create.json",
    "daemonset_create.json",
    "replicaset_create.json",
    "job_create.json",
    "cronjob_create.json",
]


def review(name: str) -> dict:
    return json.loads((REQUESTS / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    forget_written()


@pytest.fixture
def platform():
    return TeamFactory(slug="platform")


@pytest.fixture
def payments():
    return TeamFactory(slug="payments")


@pytest.fixture
def webhook(platform) -> APIClient:
    _, plaintext = token_create(team=platform, name="prod webhook", scope="admission", cluster="prod")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def known_image(reference: str, team, **finding: object) -> Finding:
    """An image Vigil scanned at this tag, with one open critical vulnerability that has a fix."""
    ref = ImageRef.parse(reference)
    assert ref is not None
    image = ImageFactory(registry=ref.registry, repository=ref.repository, team=team)
    ImageVersionFactory(image=image, tag=ref.tag)
    values = {"rule_id": "CVE-2023-0286", "severity": "critical", "package_name": "openssl", "fixed_version": "3.0.8", **finding}
    return FindingFactory(image=image, team=team, **values)


def validate(client: APIClient, body: object) -> dict:
    answer = client.post("/api/v1/admission/validate", json.dumps(body), content_type="application/json")
    assert answer.status_code == 200, answer.content
    return answer.json()


@pytest.mark.parametrize("name", DECIDED)
def test_every_kind_warns_naming_the_vulnerability_its_fix_and_keeps_the_uid(webhook, payments, name: str) -> None:
    body = review(name)
    last = read_request(body).containers[-1].reference
    known_image(last, payments)
    answer = validate(webhook, body)
    assert (answer["apiVersion"], answer["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert (answer["response"]["uid"], answer["response"]["allowed"]) == (body["request"]["uid"], True)
    assert any("CVE-2023-0286" in line and "fix: upgrade to 3.0.8" in line for line in answer["response"]["warnings"])


def test_a_false_positive_or_an_accepted_risk_passes_without_warnings_at_the_next_decision(webhook, payments) -> None:
    finding = known_image("nginx:1.14.2", payments)
    assert validate(webhook, review("pod_create.json"))["response"]["warnings"]
    Finding.objects.filter(pk=finding.pk).update(status=Status.FALSE_POSITIVE)
    assert validate(webhook, review("pod_create.json"))["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800010", "allowed": True}


def test_enforce_denies_with_a_message_and_the_warnings(webhook, payments) -> None:
    known_image("nginx:1.14.2", payments)
    EnforcementPolicyFactory(team=payments, mode="enforce")
    response = validate(webhook, review("pod_create.json"))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "CVE-2023-0286" in response["status"]["message"] and "team payments" in response["status"]["message"]
    assert response["warnings"]


def test_the_namespace_owner_policy_wins_over_the_image_owner(webhook, platform, payments) -> None:
    known_image("nginx:1.14.2", payments)
    OwnershipRuleFactory(team=platform, kind=OwnershipRule.Kind.NAMESPACE, pattern="default")
    EnforcementPolicyFactory(team=platform, mode="enforce")
    EnforcementPolicyFactory(team=payments, mode="warn")
    assert validate(webhook, review("pod_create.json"))["response"]["allowed"] is False


def test_a_namespace_mode_of_audit_allows_silently_and_still_records(webhook, payments, django_capture_on_commit_callbacks) -> None:
    known_image("nginx:1.14.2", payments)
    EnforcementPolicyFactory(team=payments, mode="enforce", namespace_modes={"default": "audit"})
    with django_capture_on_commit_callbacks(execute=True):
        response = validate(webhook, review("pod_create.json"))["response"]
    assert response == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800010", "allowed": True}
    assert Finding.objects.filter(stream="admission", rule_id="vigil/CVE-2023-0286").exists()


def test_init_and_ephemeral_container_images_are_decided(webhook, payments) -> None:
    known_image("busybox:1.28", payments, rule_id="CVE-2022-48174")
    warnings = validate(webhook, review("pod_ephemeral_containers_update.json"))["response"]["warnings"]
    assert [line for line in warnings if "CVE-2022-48174" in line]
    assert any("docker.io/library/busybox" in line or "busybox:1.28" in line for line in warnings)


def test_an_image_vigil_never_saw_warns_by_default(webhook) -> None:
    response = validate(webhook, review("statefulset_create.json"))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == [
        "policy vigil.unknown-image: registry.k8s.io/nginx-slim:0.24 was never scanned by Vigil: scan it in CI before deploying"
    ]


def test_the_warning_names_the_training_module(webhook, payments) -> None:
    topic = TopicFactory(slug="os-package-cves", keys=["vigil:os-package-cves"])
    module = TrainingModuleFactory(title="Patch your base image", topics=[topic])
    known_image("nginx:1.14.2", payments, package_type="debian")
    warnings = validate(webhook, review("pod_create.json"))["response"]["warnings"]
    assert any(f"learn: Patch your base image {module.url}" in line for line in warnings)


@pytest.mark.parametrize("name", ["deployment_delete.json", "scale_update_docs_example.json"])
def test_deletes_and_kinds_without_a_pod_template_are_allowed_without_a_decision(webhook, name: str) -> None:
    body = review(name)
    assert validate(webhook, body) == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": body["request"]["uid"], "allowed": True},
    }
    assert (GateDecision.objects.count(), WorkloadSighting.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "invalid_admission_review"), (b'{"kind": "Pod"}', "invalid_admission_review"), (b"[]", "invalid_admission_review")],
)
def test_a_malformed_body_gets_400_in_the_api_error_shape(webhook, body: bytes, code: str) -> None:
    answer = webhook.post("/api/v1/admission/validate", body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["message"]


def test_every_decision_is_recorded_with_its_cluster_and_namespace(webhook, payments) -> None:
    known_image("nginx:1.14.2", payments)
    validate(webhook, review("pod_create.json"))
    record = GateDecision.objects.get()
    assert (record.point, record.cluster, record.namespace, record.decision) == ("admission", "prod", "default", "warn")


def test_warnings_become_admission_events_that_aggregate(webhook, payments, django_capture_on_commit_callbacks) -> None:
    known_image("nginx:1.14.2", payments)
    with django_capture_on_commit_callbacks(execute=True):
        validate(webhook, review("pod_create.json"))
    with django_capture_on_commit_callbacks(execute=True):
        validate(webhook, review("pod_create.json"))  # a repeat: counted by the flush (test_admission_repeats.py)
    with django_capture_on_commit_callbacks(execute=True):
        repeats_flush()
    event = Finding.objects.get(stream="admission")
    seen = (event.rule_id, event.occurrences, event.resource_cluster, event.resource_namespace)
    assert seen == ("vigil/CVE-2023-0286", 2, "prod", "default")


def test_a_denial_becomes_an_admission_event_and_records_no_sighting(webhook, payments, django_capture_on_commit_callbacks) -> None:
    known_image("nginx:1.14.2", payments)
    EnforcementPolicyFactory(team=payments, mode="enforce")
    with django_capture_on_commit_callbacks(execute=True):
        validate(webhook, review("pod_create.json"))
    assert Finding.objects.filter(stream="admission", rule_id="vigil-policy", resource_name="nginx").exists()
    assert WorkloadSighting.objects.count() == 0


def test_an_allowed_deploy_records_a_sighting_of_each_image_in_its_workload(webhook, payments) -> None:
    finding = known_image("nginx:1.16.1", payments)
    validate(webhook, review("deployment_update.json"))
    sighting = WorkloadSighting.objects.get()
    assert (sighting.cluster, sighting.namespace, sighting.workload_kind, sighting.workload_name, sighting.tag) == (
        "prod",
        "default",
        "Deployment",
        "nginx-deployment",
        "1.16.1",
    )
    assert sighting.image_id == finding.image_id


def test_a_dry_run_records_nothing(webhook, payments, django_capture_on_commit_callbacks) -> None:
    known_image("nginx:1.14.2", payments)
    body = review("pod_create.json")
    body["request"]["dryRun"] = True
    with django_capture_on_commit_callbacks(execute=True):
        assert validate(webhook, body)["response"]["warnings"]
    assert (GateDecision.objects.count(), WorkloadSighting.objects.count(), Finding.objects.filter(stream="admission").count()) == (0, 0, 0)


def test_the_webhook_cluster_comes_from_the_query_for_an_unbound_token(platform, payments) -> None:
    _, plaintext = token_create(team=platform, name="webhook", scope="admission")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    known_image("nginx:1.16.1", payments)
    body = json.dumps(review("deployment_update.json"))
    answer = client.post("/api/v1/admission/validate?cluster=staging", body, content_type="application/json")
    assert answer.status_code == 200
    assert WorkloadSighting.objects.get().cluster == "staging"


def test_an_admission_token_reads_no_findings_and_posts_no_reports(webhook, payments) -> None:
    known_image("nginx:1.14.2", payments)
    refused = [
        webhook.get("/api/v1/findings/"),
        webhook.get(f"/api/v1/findings/{Finding.objects.get().pk}/"),
        webhook.get("/api/v1/findings/export.csv"),
        webhook.post("/api/v1/reports/", json.dumps(review("pod_create.json")), content_type="application/json"),
        webhook.get("/api/v1/nudges/"),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused)


def test_other_tokens_and_people_cannot_ask_the_webhook(platform) -> None:
    _, ingest_token = token_create(team=platform, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_token}")
    body = json.dumps(review("pod_create.json"))
    assert client.post("/api/v1/admission/validate", body, content_type="application/json").status_code == 403
    assert APIClient().post("/api/v1/admission/validate", b"{}", content_type="application/json").status_code == 401
    person = APIClient()
    person.force_authenticate(UserFactory(is_staff=True))
    assert person.post("/api/v1/admission/validate", body, content_type="application/json").status_code == 403


def test_a_clean_image_passes_in_a_constant_number_of_queries(webhook, payments, django_assert_max_num_queries) -> None:
    Finding.objects.filter(pk=known_image("nginx:1.16.1", payments).pk).update(status=Status.FIXED)
    validate(webhook, review("deployment_update.json"))  # first use of the token from this address, first sighting
    with django_assert_max_num_queries(10):
        answer = validate(webhook, review("deployment_update.json"))
    assert answer["response"] == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800013", "allowed": True}


def test_an_acceptance_that_stops_running_counts_at_the_very_next_decision(webhook, payments) -> None:
    finding = known_image("nginx:1.14.2", payments, status=Status.RISK_ACCEPTED)
    acceptance = RiskAcceptanceFactory(team=payments, findings=[finding], expires=timezone.localdate() + dt.timedelta(days=30))
    accepted = validate(webhook, review("pod_create.json"))["response"]

    RiskAcceptance.objects.filter(pk=acceptance.pk).update(state=RiskAcceptance.State.EXPIRED)
    revoked = validate(webhook, review("pod_create.json"))["response"]

    assert (accepted["allowed"], accepted.get("warnings")) == (True, None)
    assert any("CVE-2023-0286" in line for line in revoked["warnings"])
