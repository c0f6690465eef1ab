"""Kyverno / wg-policy PolicyReport and OpenReports parser, tested on real reports (tests/fixtures/kyverno)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError, ResourceRef
from scanners.kyverno import parser
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kyverno"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently from the raw files: results with result fail/warn/error (one per listed resource).
COUNTS = {
    "kyverno-chainsaw_clusterpolicyreport_scope_pass.yaml": 0,
    "kyverno-chainsaw_policyreport_scope_fail.yaml": 1,
    "kyverno-chainsaw_policyreport_scope_warn.yaml": 1,
    "openreports_list_format.json": 3,
    "openreports_no_results.json": 0,
    "openreports_single_report.json": 3,
    "sample-falco-policy.yaml": 2,
    "sample-v1beta1-kyverno.yaml": 0,
    "policy-reporter_webhook_cluster.json": 1,
    "policy-reporter_webhook_fail.json": 1,
    "policy-reporter_webhook_heartbeat.json": 0,
    "policy-reporter_webhook_pass.json": 0,
}


def test_every_fixture_is_counted() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md") == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} <= {"policy"}
    assert {f.source for f in result.findings} <= {"kyverno"}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detected_as_kyverno_only(name: str) -> None:
    assert registry.detect(load(name)).name == "kyverno"


def test_parser_identity() -> None:
    assert parser.name == "kyverno"
    assert parser.stream == "admission"
    assert "kyverno" in registry.format_names()


def test_openreports_single_report_fields() -> None:
    result = parser.parse(load("openreports_single_report.json"))
    vuln, fail_high, fail_low = result.findings
    assert vuln.rule_id == "CVE-2025-9232"
    assert vuln.severity == "low"
    assert vuln.details["result"] == "warn"
    assert vuln.resource == ResourceRef(cluster="", namespace="test", kind="Deployment", name="test-app")
    assert vuln.package is not None
    assert vuln.package.name == "libcrypto3"
    assert vuln.package.version == "3.5.2-r1"
    assert vuln.package.fixed_version == "3.5.4-r0"
    assert vuln.references == ["https://avd.aquasec.com/nvd/cve-2025-9232"]
    assert vuln.title == "openssl: Out-of-bounds read in HTTP client no_proxy handling"
    assert vuln.details["category"] == "vulnerability scan"
    assert fail_high.rule_id == "CVE-2025-47907"
    assert fail_high.severity == "high"
    assert fail_low.rule_id == "CIS-BENCH-001"
    assert fail_low.severity == "low"
    assert fail_low.details["source"] == "compliance-scanner"
    assert result.evaluated == [ResourceRef(namespace="test", kind="Deployment", name="test-app")]


def test_openreports_list_spans_reports() -> None:
    result = parser.parse(load("openreports_list_format.json"))
    assert [f.rule_id for f in result.findings] == ["CVE-2025-9232", "CVE-2025-47907", "SECURITY-001"]
    assert [f.resource.name for f in result.findings if f.resource] == ["app1", "app2", "app2"]
    assert [f.severity for f in result.findings] == ["low", "high", "medium"]
    assert result.evaluated == [
        ResourceRef(namespace="test", kind="Deployment", name="app1"),
        ResourceRef(namespace="test", kind="Deployment", name="app2"),
    ]


def test_no_results_still_evaluates_scope() -> None:
    result = parser.parse(load("openreports_no_results.json"))
    assert result.findings == []
    assert result.evaluated == [ResourceRef(namespace="test", kind="Deployment", name="clean-app")]


def test_pass_results_are_evaluated_not_findings() -> None:
    pod_report = parser.parse(load("sample-v1beta1-kyverno.yaml"))
    assert pod_report.findings == []
    # resources[] wins over scope; the pod is identified by its workload (no ReplicaSet hash, no pod suffix).
    assert pod_report.evaluated == [ResourceRef(namespace="nirmata", kind="Pod", name="kyverno")]
    cluster_report = parser.parse(load("kyverno-chainsaw_clusterpolicyreport_scope_pass.yaml"))
    assert cluster_report.findings == []
    assert cluster_report.evaluated == [ResourceRef(namespace="", kind="Namespace", name="bar")]


def test_scope_report_fail_without_rule() -> None:
    (finding,) = parser.parse(load("kyverno-chainsaw_policyreport_scope_fail.yaml")).findings
    assert finding.rule_id == "ivpol-report-background-sample"
    assert finding.severity == "medium"
    assert finding.resource == ResourceRef(kind="Deployment", name="test-deployment-ivpol-background")
    assert finding.title == "failed to verify image with notary cert"
    assert finding.details["source"] == "KyvernoImageValidatingPolicy"


def test_scope_report_warn() -> None:
    (finding,) = parser.parse(load("kyverno-chainsaw_policyreport_scope_warn.yaml")).findings
    assert finding.rule_id == "require-multiple-replicas/require-multiple-replicas"
    assert finding.severity == "low"
    assert finding.resource == ResourceRef(kind="Deployment", name="nginx-test")


def test_falco_policy_report_unscored_fail_becomes_warn() -> None:
    result = parser.parse(load("sample-falco-policy.yaml"))
    pod_alert, cluster_alert = result.findings
    assert pod_alert.rule_id == "Change thread namespace"
    assert pod_alert.details["result"] == "fail"
    assert pod_alert.details["effective_result"] == "warn"
    assert pod_alert.details["scored"] is False
    assert pod_alert.severity == "low"
    assert pod_alert.resource == ResourceRef(namespace="my-namespace", kind="Pod", name="a-pod")
    assert pod_alert.details["properties"]["proc.cmdline"] == "event-generator run --loop ^syscall"
    assert cluster_alert.rule_id == "audit"
    assert cluster_alert.resource is None
    assert cluster_alert.details["report_kind"] == "ClusterPolicyReport"
    assert result.evaluated == [ResourceRef(namespace="my-namespace", kind="Pod", name="a-pod")]


def _one_result(**result: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {"name": "cpol-disallow-latest-tag", "namespace": "payments"},
        "results": [
            {
                "policy": "disallow-latest-tag",
                "rule": "validate-image-tag",
                "result": "fail",
                "message": "validation error: Using a mutable image tag e.g. 'latest' is not allowed.",
                "resources": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": "api-7d9f8b6c5-x2x4z",
                        "namespace": "payments",
                        "uid": "3407b31a-b0bb-4716-a443-f4aa15662ef2",
                    }
                ],
                "scored": True,
                "source": "kyverno",
                "timestamp": {"seconds": 1679565894, "nanos": 5000},
                **result,
            }
        ],
    }


def test_old_style_report_with_pod_resource_and_timestamp() -> None:
    (finding,) = parser.parse(_one_result()).findings
    assert finding.rule_id == "disallow-latest-tag/validate-image-tag"
    assert finding.resource == ResourceRef(namespace="payments", kind="Pod", name="api")
    assert finding.details["resource_name"] == "api-7d9f8b6c5-x2x4z"
    assert finding.details["resource_uid"] == "3407b31a-b0bb-4716-a443-f4aa15662ef2"
    assert finding.occurred_at == "2023-03-23T10:04:54.000005+00:00"
    assert finding.severity == "medium"


def test_error_result_and_explicit_severity() -> None:
    error = parser.parse(_one_result(result="error")).findings[0]
    assert error.severity == "low"
    explicit = parser.parse(_one_result(result="warn", severity="critical")).findings[0]
    assert explicit.severity == "critical"
    skipped = parser.parse(_one_result(result="skip"))
    assert skipped.findings == []
    assert skipped.evaluated == [ResourceRef(namespace="payments", kind="Pod", name="api")]


def test_several_resources_in_one_result() -> None:
    report = _one_result()
    report["results"][0]["resources"].append({"apiVersion": "v1", "kind": "Pod", "name": "worker-0", "namespace": "payments"})
    result = parser.parse(report)
    assert [f.resource.name for f in result.findings if f.resource] == ["api", "worker-0"]
    assert len(result.evaluated) == 2


def test_fingerprint_ignores_pod_suffix_message_timestamp_uid() -> None:
    base = parser.parse(_one_result()).findings[0].fingerprint
    changed = _one_result(message="a different message", timestamp={"seconds": 1700000000, "nanos": 0})
    changed["results"][0]["resources"][0]["name"] = "api-5f6d7c8b9-q8z7w"
    changed["results"][0]["resources"][0]["uid"] = "00000000-0000-0000-0000-000000000000"
    assert parser.parse(changed).findings[0].fingerprint == base
    other_rule = _one_result(rule="another-rule")
    assert parser.parse(other_rule).findings[0].fingerprint != base
    other_namespace = _one_result()
    other_namespace["results"][0]["resources"][0]["namespace"] = "shop"
    assert parser.parse(other_namespace).findings[0].fingerprint != base


def test_fingerprint_stable_under_key_order_and_whitespace() -> None:
    raw = (FIXTURES / "openreports_single_report.json").read_bytes()
    reordered = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert reordered != raw
    first = [f.fingerprint for f in registry.parse_bytes(raw)[1].findings]
    second = [f.fingerprint for f in registry.parse_bytes(reordered)[1].findings]
    assert first == second
    assert len(set(first)) == 3


def test_same_report_as_yaml_and_json_gives_same_fingerprints() -> None:
    yaml_doc = load("kyverno-chainsaw_policyreport_scope_warn.yaml")
    json_doc = load_document(json.dumps(yaml_doc).encode())
    assert parser.parse(yaml_doc).findings[0].fingerprint == parser.parse(json_doc).findings[0].fingerprint


def test_cluster_report_ignores_metadata_namespace() -> None:
    report = _one_result()
    report["kind"] = "ClusterPolicyReport"
    report["results"][0]["resources"] = [{"apiVersion": "v1", "kind": "Namespace", "name": "payments"}]
    (finding,) = parser.parse(report).findings
    assert finding.resource == ResourceRef(namespace="", kind="Namespace", name="payments")


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport"})
    assert not parser.detect({"kind": "List", "items": []})
    assert not parser.detect([])
    assert not parser.detect("PolicyReport")
    assert not parser.detect({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "Policy"})
    assert parser.detect([_one_result(), _one_result()])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["results"][0].pop("policy"), "results[0]: missing policy"),
        (lambda r: r["results"][0].update(result="maybe"), "results[0]: unknown result 'maybe'"),
        (lambda r: r.update(results={"policy": "x"}), "results: expected a list, got an object"),
        (lambda r: r["results"][0].update(resources=["pod"]), "results[0].resources[0]: expected an object"),
        (lambda r: r["results"][0].update(timestamp={"seconds": "soon"}), "results[0].timestamp: seconds is not"),
        (lambda r: r["results"][0].update(scored="yes"), "results[0]: scored is not a boolean"),
        (lambda r: r.update(apiVersion="v1"), "not a policy report"),
    ],
)
def test_malformed_reports(mutate: Any, message: str) -> None:
    report = copy.deepcopy(_one_result())
    mutate(report)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(report)


def test_malformed_list_item_names_its_path() -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": [_one_result(), {"kind": "PolicyReport"}]}
    with pytest.raises(ParseError, match=r"items\[1\]: not a policy report"):
        parser.parse(document)


def test_scalar_document_is_refused() -> None:
    with pytest.raises(ParseError, match="not a policy report"):
        parser.parse("text")


# --- policy-reporter's webhook: one result per request (see fixtures/kyverno/SOURCE.md) ---------------------


def test_a_lone_result_is_the_same_finding_as_that_result_in_its_report() -> None:
    [lone] = parser.parse(load("policy-reporter_webhook_fail.json")).findings
    in_report = next(f for f in parser.parse(load("openreports_single_report.json")).findings if f.rule_id == "CVE-2025-47907")

    assert lone.fingerprint == in_report.fingerprint
    assert (lone.rule_id, lone.title, lone.severity, lone.resource, lone.package) == (
        in_report.rule_id,
        in_report.title,
        in_report.severity,
        in_report.resource,
        in_report.package,
    )
    assert lone.resource == ResourceRef(cluster="", namespace="test", kind="Deployment", name="test-app")
    assert (lone.severity, lone.occurred_at) == ("high", None)  # Go's zero time is no time
    assert lone.details["resource_uid"] == "d0cbd625-d495-415e-bf39-b4e3c4f4366e"


def test_a_lone_result_closes_nothing_by_absence() -> None:
    result = parser.parse(load("policy-reporter_webhook_fail.json"))

    assert (result.evaluated, result.evaluated_policies, result.incomplete_policies, result.resolved) == ([], [], ["CVE-2025-47907"], [])


def test_a_lone_pass_resolves_exactly_its_policy_rule_and_resource() -> None:
    body = load("policy-reporter_webhook_pass.json")
    failing = parser.parse({**body, "status": "fail"})

    result = parser.parse(body)

    assert result.findings == []
    assert result.resolved == [failing.findings[0].fingerprint]
    assert failing.findings[0].rule_id == "disallow-capabilities/adding-capabilities"
    assert failing.findings[0].resource == ResourceRef(cluster="", namespace="nirmata", kind="Pod", name="kyverno")
    assert failing.findings[0].occurred_at == "2023-03-23T10:04:54+00:00"
    assert parser.parse({**body, "status": "skip"}).resolved == result.resolved
    assert parser.parse({**body, "rule": "other-rule"}).resolved != result.resolved


def test_a_heartbeat_has_no_findings() -> None:
    result = parser.parse(load("policy-reporter_webhook_heartbeat.json"))

    assert (result.findings, result.resolved, result.evaluated, result.evaluated_policies) == ([], [], [], [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "maybe"}, "status: unknown result 'maybe'"),
        ({"status": 3}, "status"),
        ({"policy": ""}, "policy"),
        ({"resource": {"uid": "x"}}, "resource has neither kind nor name"),
        ({"properties": "x"}, "properties"),
    ],
)
def test_a_broken_lone_result_says_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse({**load("policy-reporter_webhook_fail.json"), **change})
