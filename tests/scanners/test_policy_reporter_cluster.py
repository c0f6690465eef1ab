"""policy-reporter forwards cluster-level results (no resource) too: they are read with the cluster as the
resource, with the identity the same result has in its ClusterPolicyReport (fixtures/kyverno/SOURCE.md)."""

from __future__ import annotations

from scanners import registry
from scanners.base import ResourceRef
from scanners.loader import load_document
from tests.conftest import fixture_bytes


def test_a_cluster_level_result_is_detected_and_shown_on_the_cluster() -> None:
    parser, result = registry.parse_bytes(fixture_bytes("kyverno/policy-reporter_webhook_cluster.json"), None)

    (finding,) = result.findings
    assert parser.name == "kyverno"
    assert finding.resource == ResourceRef(cluster="", namespace="", kind="Cluster", name="")
    assert (finding.rule_id, finding.kind) == ("audit", "policy")
    assert result.incomplete_policies == ["audit"]  # one result speaks for itself only: nothing closes by absence


def test_a_cluster_level_result_is_the_same_finding_as_in_its_cluster_policy_report() -> None:
    _, lone = registry.parse_bytes(fixture_bytes("kyverno/policy-reporter_webhook_cluster.json"), None)
    _, report = registry.parse_bytes(fixture_bytes("kyverno/sample-falco-policy.yaml"), None)

    in_report = next(f for f in report.findings if f.rule_id == "audit")
    assert lone.findings[0].fingerprint == in_report.fingerprint


def test_json_with_a_status_and_a_policy_but_nothing_of_policy_reporter_is_not_taken_for_it() -> None:
    document = load_document(b'{"status": "fail", "policy": "audit"}')

    assert [p.name for p in registry.PARSERS if p.detect(document)] == []
