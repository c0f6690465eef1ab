"""Kubernetes ``admission.k8s.io/v1`` AdmissionReview carrying both the request and the webhook's response.

Accepted documents: one AdmissionReview or a list of them (JSON array / JSON lines of recorded reviews).

* Denied (``response.allowed: false``): one finding per review, about the object's workload.  The workload's
  images are all listed in ``details["images"]``; ``Finding.image`` is the first regular container's image.
  One finding per workload (not per image) because a denial is a policy result and its identity is
  (cluster, namespace, kind, name, policy, rule), which has no image in it.
* Allowed with ``response.warnings``: one finding per warning, severity low.  Denied reviews with warnings get
  the denial finding plus one finding per warning.
* Allowed without warnings: no finding (the resource still counts as evaluated).
* A response without the request (what a webhook sends back) has no workload to attach to: ParseError.

``rule_id`` of a denial: ``response.status.reason`` unless it is one of Kubernetes' generic ``StatusReason``
words (``Forbidden``, ``Invalid``, ...); else the policy named in the message (Kyverno's
``policy:\\n  rule: message`` block, or Gatekeeper's ``[constraint] message``); else ``admission-denied``.
Pods are identified by their workload name (``workload_name``), never with their pod-hash suffix.

``event_digest``: a digest of exactly what this parser reads of one review to make its findings, but for what
differs per request (the request ``uid``, a pod's generated name): two reviews with one digest make the same
findings (identity, text, severity, image), their details naming each its own request.  Vigil keys its own
repeated admission events on it (they are counted, not stored again: dashboard/services/admission_repeats.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from scanners.base import (
    Finding,
    ImageRef,
    ParseError,
    ParseResult,
    ResourceRef,
    clean_text,
    expect_dict,
    expect_list,
    opt_str,
    type_name,
)
from scanners.fingerprint import make_fingerprint, workload_name

BARE_RESPONSE = "AdmissionReview has a response but no request: nothing to attach it to"

#: Kubernetes' own StatusReason values: they say how a request failed, not which policy failed it.
_GENERIC_REASONS = frozenset(
    {
        "",
        "unknown",
        "unauthorized",
        "forbidden",
        "notfound",
        "alreadyexists",
        "conflict",
        "gone",
        "invalid",
        "servertimeout",
        "timeout",
        "toomanyrequests",
        "badrequest",
        "methodnotallowed",
        "notacceptable",
        "requestentitytoolarge",
        "unsupportedmediatype",
        "internalerror",
        "expired",
        "serviceunavailable",
    }
)
_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "ReplicationController"})
_KINDS_BY_RESOURCE = {
    "pods": "Pod",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "replicasets": "ReplicaSet",
    "replicationcontrollers": "ReplicationController",
    "jobs": "Job",
    "cronjobs": "CronJob",
}
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# Gatekeeper: "[constraint-name] message" (one line per violated constraint; may follow the API server's prefix).
_GATEKEEPER = re.compile(r"(?:^|denied the request:)\s*\[([A-Za-z0-9][A-Za-z0-9._:-]*)\]\s", re.MULTILINE)
# Kyverno denial: "... blocked due to the following policies\n\npolicy-name:\n  rule-name: message".
_KYVERNO_POLICY = re.compile(r"^([a-z0-9][a-z0-9.-]*):\s*$\n^[ \t]+([A-Za-z0-9][\w.-]*):", re.MULTILINE)
# Kyverno warning: "policy policy-name.rule-name: message".
_KYVERNO_WARNING = re.compile(r"^policy ([a-z0-9][a-z0-9.-]*)\.([A-Za-z0-9][\w-]*): ")


def _is_review(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    api_version = value.get("apiVersion")
    return value.get("kind") == "AdmissionReview" and isinstance(api_version, str) and api_version.startswith("admission.k8s.io/")


def _policies_in(message: str) -> list[tuple[str, str]]:
    """(policy, rule) pairs named in a denial or warning message, in order."""
    found: list[tuple[str, str]] = []
    warning = _KYVERNO_WARNING.match(message)
    if warning:
        found.append((warning.group(1), warning.group(2)))
    for match in _KYVERNO_POLICY.finditer(message):
        found.append((match.group(1), match.group(2)))
    for match in _GATEKEEPER.finditer(message):
        found.append((match.group(1), ""))
    unique: list[tuple[str, str]] = []
    for pair in found:
        if pair not in unique:
            unique.append(pair)
    return unique


class AdmissionReviewParser:
    name = "admission-review"
    stream = "admission"
    #: An event stream: each report adds occurrences, never closes by absence, and is parsed even when repeated.
    events = True
    repeat_skips_parse = False

    def detect(self, document: Any) -> bool:
        if isinstance(document, list):
            return bool(document) and all(_is_review(item) for item in document)
        return _is_review(document)

    def parse(self, document: Any) -> ParseResult:
        if isinstance(document, list):
            reviews = [(f"[{index}]", item) for index, item in enumerate(document)]
        elif isinstance(document, dict):
            reviews = [("", document)]
        else:
            raise ParseError(f"not an AdmissionReview: expected an object or a list, got {type_name(document)}")
        result = ParseResult(findings=[])
        for where, review in reviews:
            self._parse_review(review, where, result)
        return result

    def _parse_review(self, value: Any, where: str, result: ParseResult) -> None:
        def at(path: str) -> str:
            return f"{where}.{path}" if where else path

        request, response, allowed = _decision(value, where, at)
        operation = opt_str(request, "operation", at("request"), 32)
        subject = _Subject.of(request, at)
        if subject.resource not in result.evaluated:
            result.evaluated.append(subject.resource)
        labels = subject.metadata.get("labels")
        if isinstance(labels, dict):
            for key, label in labels.items():
                if isinstance(key, str) and isinstance(label, str):
                    result.labels[clean_text(key, 255)] = clean_text(label, 255)

        obj, obj_where = subject.obj, subject.obj_where
        containers = pod_containers(obj, opt_str(obj, "kind", obj_where, 255) or subject.kind, obj_where)
        first_image = next((ImageRef.parse(image) for group, _, image in containers if group == "containers"), None)
        if first_image is None and containers:
            first_image = ImageRef.parse(containers[0][2])
        details = _request_details(request, at, operation=operation, allowed=allowed, subject=subject, containers=containers)

        warnings = expect_list(response.get("warnings"), at("response.warnings"))
        if not allowed:
            result.findings.append(_denial(response, at, source=self.name, details=details, subject=subject, image=first_image))
        for index, raw in enumerate(warnings):
            if not isinstance(raw, str):
                raise ParseError(f"{at('response.warnings')}[{index}]: expected a string, got {type_name(raw)}")
            text = clean_text(raw).strip()
            if text:
                result.findings.append(_warning(text, source=self.name, details=details, subject=subject, image=first_image))


def event_digest(value: Any) -> str:
    """What decides the findings of one review (``_parse_review``'s reads), as a digest.

    Left out, because they differ per request and decide no finding's identity, text or severity: the request
    ``uid`` (``details["request_uid"]``) and a pod's generated name when its workload name is kept
    (``details["resource_name"]``: every pod of a ReplicaSet, each retry of a crash-looping Job).  Put in, though
    the parser reads it of denials only: the status of an allowed review too (a webhook's message names its policy
    and version, and a changed answer is a new digest even where it would make the same findings).  Raises
    ParseError as ``parse`` does.
    """

    def at(path: str) -> str:
        return path

    request, response, allowed = _decision(value, "", at)
    subject = _Subject.of(request, at)
    obj, obj_where = subject.obj, subject.obj_where
    user_info = request.get("userInfo")
    status = response.get("status")
    read = {
        "operation": opt_str(request, "operation", at("request"), 32),
        "subject": [subject.sub_resource, subject.kind, subject.namespace, subject.name],
        "labels": subject.metadata.get("labels"),
        "containers": pod_containers(obj, opt_str(obj, "kind", obj_where, 255) or subject.kind, obj_where),
        "dry_run": request.get("dryRun") is True,
        "username": user_info.get("username") if isinstance(user_info, dict) else None,
        "allowed": allowed,
        "warnings": response.get("warnings"),
        "status": {key: status.get(key) for key in ("message", "reason", "code")} if isinstance(status, dict) else None,
    }
    text = json.dumps(read, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _decision(value: Any, where: str, at: Callable[[str], str]) -> tuple[Mapping[str, Any], Mapping[str, Any], bool]:
    """``(request, response, allowed)`` of a review that has all three."""
    prefix = f"{where}: " if where else ""
    review = expect_dict(value, where or "AdmissionReview")
    if not _is_review(review):
        raise ParseError(f"{prefix}not an AdmissionReview: expected kind AdmissionReview, apiVersion admission.k8s.io/*")
    if review.get("request") is None:
        raise ParseError(prefix + BARE_RESPONSE)
    if review.get("response") is None:
        raise ParseError(f"{prefix}AdmissionReview has a request but no response: there is no decision to record")
    request = expect_dict(review["request"], at("request"))
    response = expect_dict(review["response"], at("response"))
    allowed = response.get("allowed")
    if not isinstance(allowed, bool):
        raise ParseError(f"{at('response')}: allowed is {'missing' if allowed is None else 'not a boolean'}")
    return request, response, allowed


@dataclasses.dataclass(frozen=True)
class _Subject:
    """The object the request is about (``object``, else ``oldObject`` for a DELETE) and the workload it names."""

    obj: Mapping[str, Any]
    obj_where: str
    metadata: Mapping[str, Any]
    sub_resource: str
    kind: str
    namespace: str
    raw_name: str
    name: str

    @property
    def resource(self) -> ResourceRef:
        return ResourceRef(cluster="", namespace=self.namespace, kind=self.kind, name=self.name)

    @classmethod
    def of(cls, request: Mapping[str, Any], at: Callable[[str], str]) -> _Subject:
        obj: Mapping[str, Any] = {}
        for key in ("object", "oldObject"):
            if request.get(key) is not None:
                obj = expect_dict(request[key], at(f"request.{key}"))
                obj_where = at(f"request.{key}")
                break
        else:
            obj_where = at("request.object")
        metadata = expect_dict(obj.get("metadata") or {}, f"{obj_where}.metadata")
        request_kind = expect_dict(request.get("kind") or {}, at("request.kind"))
        request_resource = expect_dict(request.get("resource") or {}, at("request.resource"))
        sub_resource = opt_str(request, "subResource", at("request"), 64)
        kind = opt_str(obj, "kind", obj_where, 255) or opt_str(request_kind, "kind", at("request.kind"), 255)
        if sub_resource:
            # e.g. deployments/scale (object is a Scale), pods/ephemeralcontainers: the workload is the parent.
            plural = opt_str(request_resource, "resource", at("request.resource"), 255)
            kind = _KINDS_BY_RESOURCE.get(plural, kind)
        namespace = opt_str(request, "namespace", at("request"), 255) or opt_str(metadata, "namespace", f"{obj_where}.metadata", 255)
        raw_name = opt_str(request, "name", at("request"), 255) or opt_str(metadata, "name", f"{obj_where}.metadata", 255)
        name = workload_of(raw_name, kind, metadata, f"{obj_where}.metadata")
        return cls(obj, obj_where, metadata, sub_resource, kind, namespace, raw_name, name)


def _request_details(
    request: Mapping[str, Any],
    at: Callable[[str], str],
    *,
    operation: str,
    allowed: bool,
    subject: _Subject,
    containers: list[tuple[str, str, str]],
) -> dict[str, Any]:
    """What every finding of the review keeps of the request (only the keys it gives)."""
    details: dict[str, Any] = {"operation": operation, "allowed": allowed}
    request_uid = opt_str(request, "uid", at("request"), 255)
    if request_uid:
        details["request_uid"] = request_uid
    if subject.sub_resource:
        details["sub_resource"] = subject.sub_resource
    if request.get("dryRun") is True:
        details["dry_run"] = True
    user_info = request.get("userInfo")
    if isinstance(user_info, dict):
        username = opt_str(user_info, "username", at("request.userInfo"), 255)
        if username:
            details["username"] = username
    if subject.raw_name and subject.raw_name != subject.name:
        details["resource_name"] = subject.raw_name
    if containers:
        details["images"] = [{"container": cname, "image": image, "list": group} for group, cname, image in containers]
    return details


def _denial(
    response: Mapping[str, Any],
    at: Callable[[str], str],
    *,
    source: str,
    details: dict[str, Any],
    subject: _Subject,
    image: ImageRef | None,
) -> Finding:
    """The denial as a finding of the policy that denied (its reason, else the first policy its message names)."""
    status = expect_dict(response.get("status") or {}, at("response.status"))
    message = opt_str(status, "message", at("response.status"))
    reason = opt_str(status, "reason", at("response.status"), 255)
    code = status.get("code")
    policies = _policies_in(message)
    if reason and reason.strip().lower() not in _GENERIC_REASONS:
        policy, rule = reason.strip(), ""
    elif policies:
        policy, rule = policies[0]
    else:
        policy, rule = "admission-denied", ""
    denial = dict(details)
    if reason:
        denial["reason"] = reason
    if isinstance(code, int) and not isinstance(code, bool):
        denial["code"] = code
    if policies:
        denial["policies"] = [f"{p}/{r}" if r else p for p, r in policies]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and lines[0].endswith("blocked due to the following policies") and policies:
        # Kyverno's first line is generic; name the first failed policy instead.
        lines[0] = f"{lines[0].split(' was blocked', 1)[0]} was blocked by policy {policies[0][0]}"
    kind, name = subject.kind, subject.name
    return Finding(
        kind="policy",
        source=source,
        rule_id=f"{policy}/{rule}" if rule else policy,
        title=lines[0] if lines else f"Admission denied: {kind} {name}".strip(),
        severity="medium",
        fingerprint=make_fingerprint("policy", "", subject.namespace, kind, name, policy, rule),
        image=image,
        resource=subject.resource,
        description=message,
        details=denial,
    )


def _warning(text: str, *, source: str, details: dict[str, Any], subject: _Subject, image: ImageRef | None) -> Finding:
    """A warning as a low finding of the policy it names, else identified by its text."""
    named = _policies_in(text)
    if named:
        policy, rule = named[0]
        rule_id = f"{policy}/{rule}" if rule else policy
        identity_rule = rule
    else:
        # Nothing but the text tells two plain warnings apart: identify them by it.
        policy, rule_id, identity_rule = "admission-warning", "admission-warning", " ".join(text.split())
    return Finding(
        kind="policy",
        source=source,
        rule_id=rule_id,
        title=text.splitlines()[0],
        severity="low",
        fingerprint=make_fingerprint("policy", "", subject.namespace, subject.kind, subject.name, policy, identity_rule),
        image=image,
        resource=subject.resource,
        description=text,
        details={**details, "warning": True},
    )


def workload_of(name: str, kind: str, metadata: Mapping[str, Any], where: str) -> str:
    """The stable name: pods lose their generated suffixes; a pod created from ``generateName`` is named
    after its owner (ReplicaSet hash removed) or its ``generateName`` prefix."""
    if name:
        return workload_name(name, kind=kind)
    generate = opt_str(metadata, "generateName", where, 255).rstrip("-")
    if not generate:
        return ""
    if kind == "Pod":
        owners = metadata.get("ownerReferences")
        if isinstance(owners, list):
            for owner in owners:
                if isinstance(owner, dict) and owner.get("kind") == "ReplicaSet" and isinstance(owner.get("name"), str):
                    return workload_name(owner["name"], kind="ReplicaSet")
    return generate


def pod_containers(obj: Mapping[str, Any], kind: str, where: str) -> list[tuple[str, str, str]]:
    """(list name, container name, image) for every container of the object's pod spec."""
    path = ["spec"]
    if kind in _TEMPLATE_KINDS:
        path = ["spec", "template", "spec"]
    elif kind == "CronJob":
        path = ["spec", "jobTemplate", "spec", "template", "spec"]
    elif kind != "Pod":
        return []
    spec: Any = obj
    spec_where = where
    for key in path:
        if not isinstance(spec, dict) or spec.get(key) is None:
            return []
        spec = spec[key]
        spec_where = f"{spec_where}.{key}"
    spec = expect_dict(spec, spec_where)
    out: list[tuple[str, str, str]] = []
    for group in _CONTAINER_LISTS:
        for index, raw in enumerate(expect_list(spec.get(group), f"{spec_where}.{group}")):
            container_where = f"{spec_where}.{group}[{index}]"
            container = expect_dict(raw, container_where)
            image = opt_str(container, "image", container_where, 512)
            if image:
                out.append((group, opt_str(container, "name", container_where, 255), image))
    return out


parser = AdmissionReviewParser()
