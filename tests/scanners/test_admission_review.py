"""AdmissionReview parser.  Fixtures are written from the Kubernetes "Dynamic Admission Control" docs (SOURCE.md)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.admission_review import BARE_RESPONSE, event_digest, parser
from scanners.base import ImageRef, ParseError, ResourceRef
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "admission-review"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently: 1 per denied review + 1 per response warning.
COUNTS = {
    "allowed_no_warnings_daemonset.json": 0,
    "allowed_warnings_cronjob.json": 3,
    "denied_delete_statefulset_gatekeeper.json": 1,
    "denied_ephemeral_debug.json": 1,
    "denied_pod_kyverno.json": 1,
    "denied_scale_docs_example.json": 1,
    "reviews_deployment_job.jsonl": 2,
}


def test_every_fixture_is_counted() -> None:
    names = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and p.suffix != ".md")
    assert names == sorted([*COUNTS, "bare_response_docs_example.json"])


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} <= {"policy"}


@pytest.mark.parametrize("name", sorted([*COUNTS, "bare_response_docs_example.json"]))
def test_detected_as_admission_review_only(name: str) -> None:
    assert registry.detect(load(name)).name == "admission-review"


def test_parser_identity() -> None:
    assert parser.name == "admission-review"
    assert parser.stream == "admission"


def test_bare_response_is_refused() -> None:
    with pytest.raises(ParseError, match=re.escape(BARE_RESPONSE)):
        parser.parse(load("bare_response_docs_example.json"))
    assert BARE_RESPONSE == "AdmissionReview has a response but no request: nothing to attach it to"
    with pytest.raises(ParseError, match=re.escape(BARE_RESPONSE)):
        registry.parse_bytes((FIXTURES / "bare_response_docs_example.json").read_bytes())


def test_docs_example_scale_denial() -> None:
    result = parser.parse(load("denied_scale_docs_example.json"))
    (finding,) = result.findings
    assert finding.rule_id == "admission-denied"
    assert finding.severity == "medium"
    assert finding.title == "You cannot do this because it is Tuesday and your name starts with A"
    # deployments/scale: the workload is the Deployment, not the Scale subresource object.
    assert finding.resource == ResourceRef(namespace="my-namespace", kind="Deployment", name="my-deployment")
    assert finding.image is None
    assert finding.details["code"] == 403
    assert finding.details["operation"] == "UPDATE"
    assert finding.details["sub_resource"] == "scale"
    assert finding.details["username"] == "admin"
    assert "images" not in finding.details
    assert result.evaluated == [finding.resource]


def test_kyverno_denial_of_a_generated_pod() -> None:
    result = parser.parse(load("denied_pod_kyverno.json"))
    (finding,) = result.findings
    assert finding.rule_id == "disallow-latest-tag/validate-image-tag"
    assert finding.details["policies"] == [
        "disallow-latest-tag/validate-image-tag",
        "require-run-as-nonroot/run-as-non-root",
    ]
    # generateName "api-7d9f8b6c5-" with a ReplicaSet owner: the workload is "api".
    assert finding.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert finding.image == ImageRef.parse("registry.example.com/payments/api:latest")
    assert finding.details["images"] == [
        {"container": "api", "image": "registry.example.com/payments/api:latest", "list": "containers"},
        {"container": "migrate", "image": "registry.example.com/payments/migrate:1.4.1", "list": "initContainers"},
    ]
    assert finding.title == "resource Pod/payments/ was blocked by policy disallow-latest-tag"
    assert result.labels["team"] == "payments"


def test_warnings_on_a_cronjob() -> None:
    result = parser.parse(load("allowed_warnings_cronjob.json"))
    envvar, memory, kyverno = result.findings
    assert {f.severity for f in result.findings} == {"low"}
    assert envvar.rule_id == "admission-warning"
    assert envvar.title == "duplicate envvar entries specified with name foo"
    assert memory.rule_id == "admission-warning"
    assert envvar.fingerprint != memory.fingerprint
    assert kyverno.rule_id == "require-requests-limits/validate-resources"
    assert kyverno.resource == ResourceRef(namespace="reporting", kind="CronJob", name="nightly-report")
    # CronJob images come from spec.jobTemplate.spec.template.spec.
    assert kyverno.image == ImageRef.parse("ghcr.io/example/report-runner:2.3.0")
    assert kyverno.details["warning"] is True
    assert kyverno.details["allowed"] is True


def test_allowed_without_warnings_evaluates_only() -> None:
    result = parser.parse(load("allowed_no_warnings_daemonset.json"))
    assert result.findings == []
    assert result.evaluated == [ResourceRef(namespace="monitoring", kind="DaemonSet", name="node-exporter")]
    assert result.labels == {"app": "node-exporter"}


def test_delete_uses_old_object() -> None:
    (finding,) = parser.parse(load("denied_delete_statefulset_gatekeeper.json")).findings
    assert finding.rule_id == "prevent-delete-production-db"
    assert finding.details["reason"] == "Forbidden"
    assert finding.details["operation"] == "DELETE"
    assert finding.resource == ResourceRef(namespace="production", kind="StatefulSet", name="orders-db")
    assert finding.image is not None
    assert finding.image.repository == "library/postgres"
    assert finding.image.tag == "16.3"
    assert finding.image.digest == "sha256:" + "a" * 64
    assert [entry["image"] for entry in finding.details["images"]][1] == "busybox:1.36"


def test_ephemeral_debug_container_reason_is_the_rule() -> None:
    (finding,) = parser.parse(load("denied_ephemeral_debug.json")).findings
    assert finding.rule_id == "EphemeralContainersForbidden"
    assert finding.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert finding.details["resource_name"] == "api-7d9f8b6c5-x2x4z"
    assert [entry["list"] for entry in finding.details["images"]] == ["containers", "ephemeralContainers"]


def test_json_lines_deployment_and_job() -> None:
    result = parser.parse(load("reviews_deployment_job.jsonl"))
    denial, warning = result.findings
    assert denial.rule_id == "prod-repo-is-openpolicyagent"
    assert denial.details["policies"] == ["prod-repo-is-openpolicyagent", "container-must-have-limits"]
    assert denial.image == ImageRef.parse("docker.io/library/nginx:1.25")
    assert len(denial.details["images"]) == 2
    assert warning.rule_id == "container-must-have-limits"
    assert warning.severity == "low"
    assert warning.resource == ResourceRef(namespace="shop", kind="Job", name="db-migrate-28391234")
    assert len(result.evaluated) == 2


def test_fingerprint_ignores_pod_hash_image_tag_and_message() -> None:
    review = load("denied_ephemeral_debug.json")
    base = parser.parse(review).findings[0].fingerprint
    changed = copy.deepcopy(review)
    changed["request"]["name"] = "api-5f6d7c8b9-q8z7w"
    changed["request"]["uid"] = "11111111-2222-4333-8444-555555555555"
    changed["request"]["object"]["spec"]["containers"][0]["image"] = "registry.example.com/payments/api:1.4.3"
    changed["response"]["status"]["message"] = "no debugging here"
    assert parser.parse(changed).findings[0].fingerprint == base
    generated = parser.parse(load("denied_pod_kyverno.json")).findings[0]
    # The same workload (payments/Pod/api) but another policy: another identity.
    assert generated.fingerprint != base


def test_fingerprint_stable_under_key_order_and_whitespace() -> None:
    raw = (FIXTURES / "allowed_warnings_cronjob.json").read_bytes()
    reordered = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw)[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    ]


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRequest"})
    assert not parser.detect({"apiVersion": "v1", "kind": "AdmissionReview"})
    assert not parser.detect([])
    assert not parser.detect(None)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("response"), "AdmissionReview has a request but no response"),
        (lambda r: r["response"].pop("allowed"), "response: allowed is missing"),
        (lambda r: r["response"].update(allowed="no"), "response: allowed is not a boolean"),
        (lambda r: r["response"].update(warnings="careful"), "response.warnings: expected a list, got a string"),
        (lambda r: r["response"].update(warnings=[3]), "response.warnings[0]: expected a string, got a number"),
        (lambda r: r["request"].update(object=[]), "request.object: expected an object, got a list"),
        (
            lambda r: r["request"]["object"]["spec"].update(containers=[{"image": ["nginx"]}]),
            "request.object.spec.containers[0]: image is not a string",
        ),
        (lambda r: r.update(request="pod"), "request: expected an object, got a string"),
    ],
)
def test_malformed_reviews(mutate: Any, message: str) -> None:
    review = copy.deepcopy(load("denied_ephemeral_debug.json"))
    mutate(review)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(review)


def test_malformed_review_in_a_list_names_its_index() -> None:
    reviews = [load("denied_ephemeral_debug.json"), load("bare_response_docs_example.json")]
    with pytest.raises(ParseError, match=re.escape("[1]: " + BARE_RESPONSE)):
        parser.parse(reviews)


def test_gatekeeper_name_after_api_server_prefix() -> None:
    review = copy.deepcopy(load("denied_scale_docs_example.json"))
    review["response"]["status"]["message"] = (
        'admission webhook "validation.gatekeeper.sh" denied the request: [ns-must-have-gk] you must provide labels'
    )
    (finding,) = parser.parse(review).findings
    assert finding.rule_id == "ns-must-have-gk"


# --- event_digest: what decides a review's findings, but for what differs per request ----------------------------

#: The fixtures holding one review (event_digest reads one).
SINGLE = sorted(name for name in COUNTS if name.endswith(".json"))
#: The details naming one request: the only part of its findings two reviews with one digest may differ in.
PER_REQUEST = ("request_uid", "resource_name")


def made(review: Any) -> list[dict[str, Any]]:
    """The findings a review makes, but for the details naming its request."""
    findings = [finding.to_dict() for finding in parser.parse(review).findings]
    return [{**found, "details": {k: v for k, v in found["details"].items() if k not in PER_REQUEST}} for found in findings]


@pytest.mark.parametrize("name", SINGLE)
def test_another_request_with_the_same_review_has_its_digest_and_makes_its_findings(name: str) -> None:
    review = load(name)
    again = copy.deepcopy(review)
    again["request"]["uid"] = "11111111-2222-4333-8444-555555555555"
    again["response"]["uid"] = again["request"]["uid"]

    assert (event_digest(again), made(again)) == (event_digest(review), made(review))


def test_another_pod_of_the_replicaset_has_its_digest_and_makes_its_findings() -> None:
    review = load("denied_ephemeral_debug.json")  # pod api-7d9f8b6c5-x2x4z
    other = copy.deepcopy(review)
    other["request"]["name"] = other["request"]["object"]["metadata"]["name"] = "api-7d9f8b6c5-q8z7w"

    assert (event_digest(other), made(other)) == (event_digest(review), made(review))
    assert parser.parse(other).findings[0].details["resource_name"] == "api-7d9f8b6c5-q8z7w"


def _set(path: str, value: Any) -> Any:
    def change(review: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = review
        for key in parents:
            target = target[key]
        target[last] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _set("request.namespace", "shop"),
        _set("request.name", "web-5c8d7f9b4-q8z7w"),
        _set("request.operation", "CONNECT"),
        _set("request.userInfo", {"username": "someone-else"}),
        _set("request.object.metadata.labels", {"app": "api", "team": "storefront"}),
        _set("request.object.spec.containers", [{"name": "api", "image": "registry.example.com/payments/api:1.4.3"}]),
        _set("response.allowed", True),
        _set("response.warnings", ["policy vigil.CVE-2023-0286: CVE-2023-0286 in openssl 3.0.7 (critical)"]),
        _set("response.status", {"code": 403, "reason": "vigil-policy", "message": "another policy version"}),
    ],
)
def test_anything_else_the_findings_are_made_of_changes_the_digest(change: Any) -> None:
    review = load("denied_ephemeral_debug.json")
    changed = copy.deepcopy(review)
    change(changed)

    assert event_digest(changed) != event_digest(review)


def test_the_digest_refuses_what_parse_refuses() -> None:
    with pytest.raises(ParseError, match="no request"):
        event_digest(load("bare_response_docs_example.json"))
