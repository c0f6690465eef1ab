"""The requests a validating webhook receives, from the Kubernetes documentation's examples (fixtures/admission-review/requests)."""

from __future__ import annotations

import json

import pytest

from scanners.admission_request import MAX_WARNINGS, WARNING_CHARS, bounded_warnings, read_request, render_response
from scanners.base import ParseError
from tests.conftest import FIXTURES

REQUESTS = FIXTURES / "admission-review" / "requests"


def load(name: str) -> dict:
    return json.loads((REQUESTS / name).read_text())


@pytest.mark.parametrize(
    ("name", "workload", "images"),
    [
        ("pod_create.json", ("Pod", "nginx"), [("containers", "nginx:1.14.2")]),
        (
            "pod_init_containers_create.json",
            ("Pod", "myapp-pod"),
            [("containers", "busybox:1.28"), ("initContainers", "busybox:1.28"), ("initContainers", "busybox:1.28")],
        ),
        (
            "pod_ephemeral_containers_update.json",
            ("Pod", "nginx"),
            [("containers", "nginx:1.14.2"), ("ephemeralContainers", "busybox:1.28")],
        ),
        ("deployment_update.json", ("Deployment", "nginx-deployment"), [("containers", "nginx:1.16.1")]),
        ("statefulset_create.json", ("StatefulSet", "web"), [("containers", "registry.k8s.io/nginx-slim:0.24")]),
        ("daemonset_create.json", ("DaemonSet", "fluentd-elasticsearch"), [("containers", "quay.io/fluentd_elasticsearch/fluentd:v5.0.1")]),
        (
            "replicaset_create.json",
            ("ReplicaSet", "frontend"),
            [("containers", "us-docker.pkg.dev/google-samples/containers/gke/gb-frontend:v5")],
        ),
        ("job_create.json", ("Job", "pi"), [("containers", "perl:5.34.0")]),
        ("cronjob_create.json", ("CronJob", "hello"), [("containers", "busybox:1.28")]),
    ],
)
def test_every_kind_with_a_pod_template_gives_its_workload_and_every_image(name: str, workload: tuple[str, str], images: list) -> None:
    request = read_request(load(name))
    assert request.decided
    assert (request.workload_kind, request.workload_name) == workload
    assert [(c.list, c.reference) for c in request.containers] == images
    assert all(c.image is not None for c in request.containers)


def test_the_documentation_example_scale_and_a_delete_are_not_decided() -> None:
    scale, delete = read_request(load("scale_update_docs_example.json")), read_request(load("deployment_delete.json"))
    assert (scale.uid, scale.kind, scale.decided) == ("705ab4f5-6393-11e8-b7cc-42010a800002", "Scale", False)
    assert (delete.operation, delete.decided) == ("DELETE", False)


def test_a_pod_of_a_replicaset_belongs_to_its_deployment() -> None:
    review = load("pod_create.json")
    metadata = review["request"]["object"]["metadata"]
    review["request"]["name"] = ""
    metadata.pop("name")
    metadata["generateName"] = "api-7d9f8b6c5-"
    metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7d9f8b6c5", "controller": True}]
    request = read_request(review)
    assert (request.workload_kind, request.workload_name) == ("Deployment", "api")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected an object"),
        ({"kind": "Pod", "apiVersion": "v1"}, "not an AdmissionReview"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, "has no request"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"operation": "CREATE"}}, "uid is missing"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "u", "object": "x"}}, "request.object"),
    ],
)
def test_malformed_reviews_are_refused_saying_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        read_request(document)


def test_the_answer_has_the_apiversion_uid_allowed_status_and_warnings() -> None:
    answer = render_response(api_version="admission.k8s.io/v1", uid="u-1", allowed=False, message="denied", code=403, warnings=["w"])
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u-1", "allowed": False, "status": {"message": "denied", "code": 403}, "warnings": ["w"]},
    }
    assert render_response(api_version="admission.k8s.io/v1", uid="u-2", allowed=True)["response"] == {"uid": "u-2", "allowed": True}


def test_warnings_are_kept_short_and_few_saying_how_many_more() -> None:
    lines = bounded_warnings(["x" * 400, *[f"w{i}" for i in range(30)]])
    assert len(lines) == MAX_WARNINGS and len(lines[0]) == WARNING_CHARS
    assert lines[-1] == "and 12 more findings (see Vigil)"
