"""trivy-operator VulnerabilityReport, ConfigAuditReport and ExposedSecretReport on real tool output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from scanners import registry
from scanners.base import ParseError
from scanners.loader import load_document
from scanners.trivy import parser as trivy_parser
from scanners.trivy_operator import parser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def raw(name: str) -> bytes:
    return (FIXTURES / "trivy-operator" / name).read_bytes()


def load(name: str) -> Any:
    return load_document(raw(name))


def by_rule(result: Any, rule_id: str) -> list[Any]:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("vulnerabilityreport_no_vuln.json", 0),
        ("vulnerabilityreport_many.json", 41),
        ("configauditreport_many.json", 13),
        ("exposedsecretreport_many.json", 2),
        ("findings_in_list.json", 18),
    ],
)
def test_every_fixture_is_detected_with_exact_counts(name: str, count: int) -> None:
    detected, result = registry.parse_bytes(raw(name))
    assert detected.name == "trivy-operator"
    assert registry.detect(load(name)) is parser
    assert len(result.findings) == count
    assert len({f.fingerprint for f in result.findings}) == count
    assert all(f.source == "trivy-operator" for f in result.findings)


def test_no_vulnerabilities_still_names_workload_and_image() -> None:
    result = parser.parse(load("vulnerabilityreport_no_vuln.json"))
    assert result.findings == []
    assert result.artifact is not None
    assert (result.artifact.name, result.artifact.tag) == ("docker.io/library/nginx", "alpine")
    assert [(r.namespace, r.kind, r.name) for r in result.evaluated] == [("default", "ReplicaSet", "nginx-deployment-965685897")]
    assert result.labels["trivy-operator.container.name"] == "nginx"


def test_vulnerability_report_fields() -> None:
    result = parser.parse(load("vulnerabilityreport_many.json"))
    assert len({f.package.name for f in result.findings if f.package}) == 6
    tiff = by_rule(result, "CVE-2022-3970")[0]
    assert tiff.kind == "vulnerability"
    assert tiff.severity == "high"
    assert tiff.cvss == 8.8
    assert tiff.package is not None
    assert (tiff.package.name, tiff.package.version, tiff.package.fixed_version) == ("tiff", "4.4.0-r1", "4.4.0-r2")
    assert tiff.image is not None
    assert (tiff.image.registry, tiff.image.repository, tiff.image.tag) == ("docker.io", "library/nginx", "alpine")
    assert tiff.resource is not None
    assert (tiff.resource.namespace, tiff.resource.kind, tiff.resource.name) == (
        "default",
        "ReplicaSet",
        "nginx-deployment-965685897",
    )
    assert tiff.references == ["https://avd.aquasec.com/nvd/cve-2022-3970"]
    assert tiff.details["container"] == "nginx"
    assert tiff.occurred_at == "2023-03-23T16:23:01+00:00"
    curl = next(f for f in by_rule(result, "CVE-2023-23914") if f.package and f.package.name == "curl")
    assert curl.severity == "critical"  # Trivy's vendor severity, even though the score is 4.2
    assert curl.cvss == 4.2
    unscored = next(f for f in by_rule(result, "CVE-2023-27535") if f.package and f.package.name == "curl")
    assert unscored.cvss is None
    sdk = by_rule(result, "CVE-2020-8912")[0]
    assert sdk.severity == "low"
    assert sdk.package is not None
    assert sdk.package.fixed_version == ""


def test_config_audit_report_checks() -> None:
    result = parser.parse(load("configauditreport_many.json"))
    assert result.artifact is None
    assert {f.kind for f in result.findings} == {"misconfiguration"}
    assert sorted(f.severity for f in result.findings).count("medium") == 2
    ksv012 = by_rule(result, "KSV012")[0]
    assert ksv012.title == "Runs as root user"
    assert ksv012.severity == "medium"
    assert ksv012.image is None
    assert ksv012.resource is not None
    assert ksv012.resource.kind == "ReplicaSet"
    assert ksv012.details["messages"] == [
        "Container 'nginx' of ReplicaSet 'nginx-deployment-965685897' should set 'securityContext.runAsNonRoot' to true"
    ]
    assert ksv012.details["category"] == "Kubernetes Security Check"


def test_passed_checks_are_not_findings() -> None:
    document = load("configauditreport_many.json")
    document["report"]["checks"][0]["success"] = True
    assert len(parser.parse(document).findings) == 12


def test_exposed_secret_report() -> None:
    result = parser.parse(load("exposedsecretreport_many.json"))
    aws = by_rule(result, "aws-secret-access-key")[0]
    assert aws.kind == "secret"
    assert aws.severity == "critical"
    assert aws.details["target"] == "root/aws_secret.txt"
    assert aws.details["match"] == 'AWS_secret_KEY="****************************************"'
    assert aws.image is not None
    assert aws.image.name == "docker.io/library/secret"
    assert by_rule(result, "github-pat")[0].details["category"] == "GitHub"


def test_bare_json_array_of_reports() -> None:
    result = parser.parse(load("findings_in_list.json"))
    assert result.artifact is not None
    assert result.artifact.digest == "sha256:f78909c2b360d866b3220655c0b079838258b8891a12ac25fc670f0cbb54229f"
    assert len(result.evaluated) == 2
    gnutls = by_rule(result, "CVE-2024-0553")[0]
    assert gnutls.resource is not None
    assert (gnutls.resource.namespace, gnutls.resource.kind, gnutls.resource.name) == ("lbc", "Pod", "ubuntu")
    assert gnutls.package is not None
    assert gnutls.package.type == "ubuntu"
    assert gnutls.cvss == 5.9
    assert gnutls.details["target"] == "ubuntu:20.04 (ubuntu 20.04)"
    assert gnutls.details["published"] == "2024-01-16T12:15:45+00:00"


def test_kubernetes_list_wrapper_and_yaml_stream() -> None:
    items = [load("vulnerabilityreport_many.json"), load("configauditreport_many.json")]
    as_list = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}
    assert registry.detect(as_list) is parser
    assert len(parser.parse(as_list).findings) == 54
    stream = yaml.safe_dump_all(items).encode()
    detected, result = registry.parse_bytes(stream)
    assert detected is parser
    assert len(result.findings) == 54
    single_yaml = yaml.safe_dump(load("exposedsecretreport_many.json")).encode()
    assert len(registry.parse_bytes(single_yaml)[1].findings) == 2


def test_same_image_in_two_workloads_is_one_vulnerability_finding() -> None:
    first = load("vulnerabilityreport_many.json")
    second = copy.deepcopy(first)
    second["metadata"]["labels"]["trivy-operator.resource.name"] = "nginx-canary-5d8f7c9b6"
    result = parser.parse([first, second])
    assert len(result.findings) == 41
    assert len(result.evaluated) == 2
    assert result.findings[0].details["also_seen"][0]["resource"]["name"] == "nginx-canary-5d8f7c9b6"


def test_workload_from_owner_reference_when_labels_are_missing() -> None:
    document = load("configauditreport_many.json")
    for key in ("trivy-operator.resource.kind", "trivy-operator.resource.name", "trivy-operator.resource.namespace"):
        del document["metadata"]["labels"][key]
    finding = parser.parse(document).findings[0]
    assert finding.resource is not None
    assert (finding.resource.namespace, finding.resource.kind, finding.resource.name) == (
        "default",
        "ReplicaSet",
        "nginx-deployment-965685897",
    )


def test_fingerprint_ignores_replicaset_hash_tag_and_timestamps() -> None:
    before = parser.parse(load("configauditreport_many.json"))
    document = load("configauditreport_many.json")
    document["metadata"]["labels"]["trivy-operator.resource.name"] = "nginx-deployment-c868466d4"
    document["report"]["updateTimestamp"] = "2030-01-01T00:00:00Z"
    document["report"]["checks"][0]["messages"] = ["reworded"]
    after = parser.parse(document)
    assert [f.fingerprint for f in before.findings] == [f.fingerprint for f in after.findings]
    vulns = load("vulnerabilityreport_many.json")
    retagged = copy.deepcopy(vulns)
    retagged["report"]["artifact"]["tag"] = "1.25-alpine"
    retagged["report"]["vulnerabilities"][0]["title"] = "new title"
    assert [f.fingerprint for f in parser.parse(vulns).findings] == [f.fingerprint for f in parser.parse(retagged).findings]


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    reordered = json.dumps(json.loads(raw("findings_in_list.json")), sort_keys=True, indent=3).encode()
    original = registry.parse_bytes(raw("findings_in_list.json"))[1]
    again = registry.parse_bytes(reordered)[1]
    assert sorted(f.fingerprint for f in original.findings) == sorted(f.fingerprint for f in again.findings)


def test_same_vulnerability_as_trivy_cli_has_the_same_fingerprint() -> None:
    operator = parser.parse(load("vulnerabilityreport_many.json"))
    tiff = by_rule(operator, "CVE-2022-3970")[0]
    cli_report = {
        "SchemaVersion": 2,
        "ArtifactName": "nginx:1.25-alpine",
        "ArtifactType": "container_image",
        "Metadata": {"RepoTags": ["nginx:1.25-alpine"]},
        "Results": [
            {
                "Target": "nginx:1.25-alpine (alpine 3.17.2)",
                "Class": "os-pkgs",
                "Type": "alpine",
                "Vulnerabilities": [
                    {
                        "VulnerabilityID": "CVE-2022-3970",
                        "PkgName": "tiff",
                        "InstalledVersion": "4.4.0-r1",
                        "Severity": "HIGH",
                    }
                ],
            }
        ],
    }
    assert trivy_parser.parse(cli_report).findings[0].fingerprint == tiff.fingerprint


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(report=None), "report: expected an object"),
        (lambda d: d["report"].update(vulnerabilities={}), "report.vulnerabilities: expected a list"),
        (
            lambda d: d["report"]["vulnerabilities"][2].pop("vulnerabilityID"),
            r"vulnerabilities\[2\]: missing vulnerabilityID",
        ),
        (
            lambda d: d["report"]["vulnerabilities"][0].update(severity=["HIGH"]),
            r"vulnerabilities\[0\]: severity is not a string",
        ),
        (lambda d: d["report"]["vulnerabilities"][0].update(links="x"), r"vulnerabilities\[0\].links: expected a list"),
        (lambda d: d.update(metadata={"name": "orphan"}), "cannot tell which workload"),
    ],
)
def test_malformed_reports_raise_parse_error_with_a_path(mutate: Any, message: str) -> None:
    document = load("vulnerabilityreport_many.json")
    mutate(document)
    with pytest.raises(ParseError, match=message):
        parser.parse(document)


def test_malformed_check_and_list_item() -> None:
    document = load("configauditreport_many.json")
    document["report"]["checks"][3]["success"] = "no"
    with pytest.raises(ParseError, match=r"report.checks\[3\]: success is not true or false"):
        parser.parse(document)
    mixed = [load("vulnerabilityreport_many.json"), {"apiVersion": "v1", "kind": "ConfigMap"}]
    with pytest.raises(ParseError, match=r"\[1\]: not a trivy-operator object"):
        parser.parse(mixed)


def test_detection_rejects_other_documents() -> None:
    assert not parser.detect({"apiVersion": "v1", "kind": "List", "items": []})
    assert not parser.detect({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport", "results": []})
    assert not parser.detect({"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "SbomReport"})
    assert not parser.detect({"SchemaVersion": 2, "Results": []})
    assert not parser.detect([{"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport"}, 3])
    assert not parser.detect("VulnerabilityReport")
