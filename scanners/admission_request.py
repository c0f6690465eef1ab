"""What a validating admission webhook receives and answers: an ``admission.k8s.io/v1`` AdmissionReview.

``read_request`` reads the request the API server sends (no decision yet): its uid, operation, the workload
(Pods and the kinds that carry a pod template: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) and
every container image of it (containers, initContainers, ephemeralContainers).  ``render_response`` writes the
answer the API server expects: the same apiVersion and kind, the request's uid, ``allowed``, an optional
``status`` and ``warnings``.  Pure Python, like the report parsers (the decision itself is made elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from scanners.admission_review import pod_containers, workload_of
from scanners.base import ImageRef, ParseError, expect_dict, opt_str

#: Object kinds whose images are decided on.
DECIDED_KINDS = frozenset({"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"})
#: Operations that bring images into the cluster (DELETE and CONNECT never do).
DECIDED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
#: Kubernetes truncates long and many warnings; keep each short and their number bounded.
WARNING_CHARS = 256
MAX_WARNINGS = 20


@dataclasses.dataclass(frozen=True)
class Container:
    list: str  # containers, initContainers or ephemeralContainers
    name: str
    reference: str
    image: ImageRef | None


@dataclasses.dataclass(frozen=True)
class AdmissionRequest:
    api_version: str
    uid: str
    operation: str
    kind: str
    namespace: str
    #: The workload as findings name it (a pod is named after its owner, without generated suffixes).
    workload_kind: str
    workload_name: str
    labels: dict[str, str]
    containers: tuple[Container, ...]
    dry_run: bool = False

    @property
    def decided(self) -> bool:
        """Whether the request brings images in at all: otherwise it is allowed without a decision."""
        return self.operation in DECIDED_OPERATIONS and self.kind in DECIDED_KINDS and bool(self.containers)


def _owner_kind(kind: str, metadata: Mapping[str, Any]) -> str:
    """A pod created by a ReplicaSet belongs to its Deployment; by a Job, to the Job (CronJob jobs stay Jobs)."""
    if kind != "Pod":
        return kind
    owners = metadata.get("ownerReferences")
    for owner in owners if isinstance(owners, list) else ():
        if isinstance(owner, dict) and owner.get("controller") is not False and isinstance(owner.get("kind"), str):
            return "Deployment" if owner["kind"] == "ReplicaSet" else str(owner["kind"])[:100]
    return kind


def read_request(document: Any) -> AdmissionRequest:
    """The request of an AdmissionReview the API server sent.  ParseError says what is wrong with it."""
    review = expect_dict(document, "AdmissionReview")
    api_version = review.get("apiVersion")
    if review.get("kind") != "AdmissionReview" or not isinstance(api_version, str) or not api_version.startswith("admission.k8s.io/"):
        raise ParseError("not an AdmissionReview: expected kind AdmissionReview and apiVersion admission.k8s.io/v1")
    if review.get("request") is None:
        raise ParseError("AdmissionReview has no request: a webhook is sent the request to decide on")
    request = expect_dict(review["request"], "request")
    uid = opt_str(request, "uid", "request", 255)
    if not uid:
        raise ParseError("request.uid is missing: the answer must carry the request's uid")
    operation = opt_str(request, "operation", "request", 32)
    request_kind = expect_dict(request.get("kind") or {}, "request.kind")
    obj: Mapping[str, Any] = {}
    if request.get("object") is not None:
        obj = expect_dict(request["object"], "request.object")
    metadata = expect_dict(obj.get("metadata") or {}, "request.object.metadata")
    kind = opt_str(obj, "kind", "request.object", 100) or opt_str(request_kind, "kind", "request.kind", 100)
    namespace = opt_str(request, "namespace", "request", 255) or opt_str(metadata, "namespace", "request.object.metadata", 255)
    raw_name = opt_str(request, "name", "request", 255) or opt_str(metadata, "name", "request.object.metadata", 255)
    containers: tuple[Container, ...] = ()
    if kind in DECIDED_KINDS and obj:
        containers = tuple(
            Container(list=group, name=name, reference=reference, image=ImageRef.parse(reference))
            for group, name, reference in pod_containers(obj, kind, "request.object")
        )
    labels = metadata.get("labels")
    return AdmissionRequest(
        api_version=api_version,
        uid=uid,
        operation=operation,
        kind=kind,
        namespace=namespace,
        workload_kind=_owner_kind(kind, metadata),
        workload_name=workload_of(raw_name, kind, metadata, "request.object.metadata"),
        labels={str(k)[:255]: str(v)[:255] for k, v in labels.items() if isinstance(v, str)} if isinstance(labels, dict) else {},
        containers=containers,
        dry_run=request.get("dryRun") is True,
    )


def bounded_warnings(lines: Sequence[str]) -> list[str]:
    """Warnings as Kubernetes shows them in full: each at most WARNING_CHARS, at most MAX_WARNINGS (the last says
    how many more there were)."""
    cut = [line if len(line) <= WARNING_CHARS else line[: WARNING_CHARS - 1] + "…" for line in lines]
    if len(cut) <= MAX_WARNINGS:
        return cut
    return [*cut[: MAX_WARNINGS - 1], f"and {len(cut) - MAX_WARNINGS + 1} more findings (see Vigil)"]


def render_response(
    *, api_version: str, uid: str, allowed: bool, message: str = "", code: int | None = None, reason: str = "", warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """The AdmissionReview the webhook answers with (same apiVersion, the request's uid)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message:
        status: dict[str, Any] = {"message": message}
        if code is not None:
            status["code"] = code
        if reason:
            status["reason"] = reason
        response["status"] = status
    if warnings:
        response["warnings"] = bounded_warnings(warnings)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
