"""Gatekeeper constraint-status parser.  Fixtures are written from Gatekeeper's audit docs (see SOURCE.md)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError, ResourceRef
from scanners.gatekeeper import parser
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gatekeeper"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently: entries of status.violations over all constraints in the file.
COUNTS = {
    "constraint_no_violations.yaml": 0,
    "constraint_ns_must_have_gk.yaml": 4,
    "constraints_list_truncated.json": 4,
}


def test_every_fixture_is_counted() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md") == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} <= {"policy"}
    assert result.evaluated == []


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detected_as_gatekeeper_only(name: str) -> None:
    assert registry.detect(load(name)).name == "gatekeeper"


def test_parser_identity() -> None:
    assert parser.name == "gatekeeper"
    assert parser.stream == "admission"


def test_docs_example_namespaces() -> None:
    findings = parser.parse(load("constraint_ns_must_have_gk.yaml")).findings
    assert [f.resource.name for f in findings if f.resource] == [
        "default",
        "gatekeeper-system",
        "kube-public",
        "kube-system",
    ]
    first = findings[0]
    assert first.rule_id == "K8sRequiredLabels/ns-must-have-gk"
    assert first.severity == "medium"
    assert first.resource == ResourceRef(cluster="", namespace="", kind="Namespace", name="default")
    assert first.title == 'you must provide labels: {"gatekeeper"}'
    assert first.occurred_at == "2019-05-11T01:46:13+00:00"
    assert first.details["enforcement_action"] == "deny"
    assert first.details["total_violations"] == 4
    assert first.details["truncated"] is False
    assert len({f.fingerprint for f in findings}) == 4


def test_list_truncated_dryrun_and_warn() -> None:
    findings = parser.parse(load("constraints_list_truncated.json")).findings
    scheduler, api_one, api_two, nginx = findings
    assert scheduler.rule_id == "K8sContainerLimits/container-must-have-limits"
    assert scheduler.severity == "low"
    assert scheduler.details["enforcement_action"] == "dryrun"
    assert scheduler.details["total_violations"] == 57
    assert scheduler.details["truncated"] is True
    assert scheduler.resource == ResourceRef(namespace="kube-system", kind="Pod", name="kube-scheduler-kind-control-plane")
    # Two pods of one Deployment: same workload, same identity.
    assert api_one.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert api_one.details["resource_name"] == "api-7d9f8b6c5-x2x4z"
    assert api_two.details["resource_name"] == "api-7d9f8b6c5-q8z7w"
    assert api_one.fingerprint == api_two.fingerprint
    assert nginx.rule_id == "K8sAllowedRepos/prod-repo-is-openpolicyagent"
    assert nginx.severity == "low"
    assert nginx.details["enforcement_action"] == "warn"
    assert nginx.details["api_version"] == "apps/v1"
    assert nginx.resource == ResourceRef(namespace="production", kind="Deployment", name="nginx")


def _constraint(**violation: Any) -> dict[str, Any]:
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sAllowedRepos",
        "metadata": {"name": "prod-repo-is-openpolicyagent"},
        "spec": {"enforcementAction": "deny"},
        "status": {
            "auditTimestamp": "2023-06-01T08:00:00Z",
            "totalViolations": 1,
            "violations": [
                {
                    "enforcementAction": "deny",
                    "kind": "Pod",
                    "name": "api-7d9f8b6c5-x2x4z",
                    "namespace": "payments",
                    "message": "container <api> has an invalid image repo <nginx:1.25>",
                    **violation,
                }
            ],
        },
    }


def test_single_violation_inherits_spec_action() -> None:
    document = _constraint()
    del document["status"]["violations"][0]["enforcementAction"]
    document["spec"]["enforcementAction"] = "warn"
    (finding,) = parser.parse(document).findings
    assert finding.details["enforcement_action"] == "warn"
    assert finding.severity == "low"


def test_fingerprint_ignores_message_timestamp_pod_suffix() -> None:
    base = parser.parse(_constraint()).findings[0].fingerprint
    changed = _constraint(message="another text", name="api-5f6d7c8b9-q8z7w")
    changed["status"]["auditTimestamp"] = "2024-01-01T00:00:00Z"
    assert parser.parse(changed).findings[0].fingerprint == base
    other_constraint = _constraint()
    other_constraint["metadata"]["name"] = "another-constraint"
    assert parser.parse(other_constraint).findings[0].fingerprint != base
    other_namespace = _constraint(namespace="shop")
    assert parser.parse(other_namespace).findings[0].fingerprint != base


def test_fingerprint_stable_under_key_order_and_whitespace() -> None:
    raw = (FIXTURES / "constraints_list_truncated.json").read_bytes()
    reordered = json.dumps(json.loads(raw), sort_keys=True, indent=4).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw)[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    ]


def test_multi_document_yaml_is_a_list() -> None:
    raw = (FIXTURES / "constraint_ns_must_have_gk.yaml").read_bytes()
    document = load_document(raw + b"\n---\n" + raw)
    assert parser.detect(document)
    assert len(parser.parse(document).findings) == 8


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate"})
    assert not parser.detect({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport"})
    assert not parser.detect({"kind": "List", "items": []})
    assert not parser.detect(42)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["status"]["violations"][0].pop("name"), "status.violations[0]: missing name"),
        (lambda c: c["status"]["violations"][0].update(kind=7), "status.violations[0]: kind is not a string"),
        (lambda c: c["status"].update(violations="none"), "status.violations: expected a list, got a string"),
        (lambda c: c["status"].update(totalViolations="many"), "status: totalViolations is not a non-negative integer"),
        (lambda c: c["status"].update(auditTimestamp="yesterday"), "status.auditTimestamp: timestamp 'yesterday' is not an RFC 3339"),
        (lambda c: c.update(metadata=None), "metadata: expected an object, got null"),
        (lambda c: c.update(status=[]), "status: expected an object, got a list"),
    ],
)
def test_malformed_constraints(mutate: Any, message: str) -> None:
    document = copy.deepcopy(_constraint())
    mutate(document)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(document)


def test_malformed_list_item_names_its_path() -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": [_constraint(), {"kind": "K8sAllowedRepos"}]}
    with pytest.raises(ParseError, match=re.escape("items[1]: not a Gatekeeper constraint")):
        parser.parse(document)
