"""Trivy JSON (SchemaVersion 2 image/fs reports and both ``trivy k8s`` shapes) on real tool output."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import Finding, ParseError
from scanners.loader import load_document
from scanners.trivy import iso_timestamp, parser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load(name: str) -> Any:
    return load_document((FIXTURES / "trivy" / name).read_bytes())


def by_rule(result: Any, rule_id: str) -> list[Any]:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("scheme_2_no_vuln.json", 0),
        ("scheme_2_many_vulns.json", 5),
        ("severity_prio.json", 2),
        ("misconfigurations_and_secrets.json", 5),
        ("trivy-golden_alpine-310_image.json", 4),
        ("trivy-golden_fluentd-image_os-and-ruby-gems.json", 2),
        ("kubernetes.json", 20),
        ("k8s_cluster_resources_minikube.json", 37),
    ],
)
def test_every_fixture_is_detected_as_trivy_with_exact_counts(name: str, count: int) -> None:
    data = (FIXTURES / "trivy" / name).read_bytes()
    detected, result = registry.parse_bytes(data)
    assert detected.name == "trivy"
    assert registry.detect(load_document(data)) is parser
    assert len(result.findings) == count
    assert len({f.fingerprint for f in result.findings}) == count
    assert all(f.source == "trivy" for f in result.findings)


def test_no_vulnerabilities_still_names_the_image() -> None:
    result = parser.parse(load("scheme_2_no_vuln.json"))
    assert result.findings == []
    assert result.artifact is not None
    assert result.artifact.name == "docker.io/library/trivy-unittest"
    assert result.artifact.tag == "latest"


def test_image_report_os_and_language_packages() -> None:
    result = parser.parse(load("scheme_2_many_vulns.json"))
    assert result.artifact is not None
    assert (result.artifact.registry, result.artifact.repository, result.artifact.tag) == (
        "docker.io",
        "library/teamdojo",
        "latest",
    )
    assert sorted(f.rule_id for f in result.findings) == [
        "CVE-2018-11771",
        "CVE-2018-1324",
        "CVE-2019-12900",
        "CVE-2020-15999",
        "CVE-2020-28196",
    ]
    freetype = by_rule(result, "CVE-2020-15999")[0]
    assert freetype.kind == "vulnerability"
    assert freetype.severity == "medium"
    assert freetype.cvss == 6.5  # SeveritySource nvd, not redhat's 8.6
    assert freetype.cwe == ["CWE-787"]
    assert freetype.package is not None
    assert freetype.package.name == "freetype"
    assert freetype.package.version == "2.9.1-r2"
    assert freetype.package.fixed_version == "2.9.1-r3"
    assert freetype.package.path == "app/libs/freetype-2.9.1-r2"
    assert freetype.image is not None
    assert freetype.image.repository == "library/teamdojo"
    assert freetype.references[0] == "https://avd.aquasec.com/nvd/cve-2020-15999"
    assert "https://nvd.nist.gov/vuln/detail/CVE-2020-15999" in freetype.references
    assert freetype.details["target"] == "teamdojo:latest (alpine 3.9.4)"
    krb5 = by_rule(result, "CVE-2020-28196")[0]
    assert krb5.severity == "high"
    assert krb5.cvss == 7.5  # no nvd entry: falls back to the only vendor (redhat)
    libbz2 = by_rule(result, "CVE-2019-12900")[0]
    assert libbz2.severity == "critical"
    assert libbz2.cvss is None  # "CVSS": null
    compress = by_rule(result, "CVE-2018-1324")[0]
    assert compress.package is not None
    assert compress.package.name == "org.apache.commons:commons-compress"
    assert compress.package.type == "jar"
    assert compress.cwe == ["CWE-835"]


def test_cvss_prefers_the_severity_source_vendor() -> None:
    result = parser.parse(load("severity_prio.json"))
    certifi = by_rule(result, "CVE-2023-37920")[0]
    assert certifi.severity == "critical"
    assert certifi.cvss == 7.5  # ghsa (the SeveritySource) wins over nvd's 9.8
    assert certifi.details["cvss_source"] == "ghsa"
    curl = by_rule(result, "CVE-2023-46218")[0]
    assert curl.severity == "low"
    assert curl.cvss == 6.5  # SeveritySource ubuntu has no score: nvd
    assert curl.cwe == []
    assert curl.details["fix_state"] == "fixed"
    assert curl.image is None  # ArtifactType cyclonedx: "sbom.json" is not an image
    assert result.artifact is None


def test_golden_report_uses_repo_tags_not_the_tarball_path() -> None:
    result = parser.parse(load("trivy-golden_alpine-310_image.json"))
    assert result.artifact is not None
    assert result.artifact.name == "ghcr.io/aquasecurity/trivy-test-images"
    assert result.artifact.tag == "alpine-310"
    finding = next(f for f in by_rule(result, "CVE-2019-1549") if f.package and f.package.name == "libssl1.1")
    assert finding.package is not None
    assert finding.package.path == ""
    assert finding.package.fixed_version == "1.1.1d-r0"
    assert finding.cvss == 5.3
    assert finding.cwe == ["CWE-330"]
    assert finding.occurred_at == "2021-08-25T12:20:30+00:00"
    assert finding.details["fix_state"] == "fixed"
    assert finding.details["purl"].startswith("pkg:apk/alpine/libssl1.1@1.1.1c-r0")


def test_language_package_path_and_comma_fixed_versions() -> None:
    result = parser.parse(load("trivy-golden_fluentd-image_os-and-ruby-gems.json"))
    gem = by_rule(result, "CVE-2020-8165")[0]
    assert gem.package is not None
    assert gem.package.path == "var/lib/gems/2.5.0/specifications/activesupport-6.0.2.1.gemspec"
    assert gem.package.fixed_version == "6.0.3.1, 5.2.4.3"
    assert gem.details["fixed_versions"] == ["6.0.3.1", "5.2.4.3"]
    assert gem.details["severity_source"] == "ghsa"
    assert gem.cvss == 9.8  # no ghsa entry in CVSS: nvd
    idn = by_rule(result, "CVE-2019-18224")[0]
    assert idn.severity == "critical"
    assert idn.image is not None
    assert idn.image.name == "ghcr.io/aquasecurity/trivy-test-images"


def test_filesystem_misconfigurations_and_secrets() -> None:
    result = parser.parse(load("misconfigurations_and_secrets.json"))
    assert result.artifact is None  # ArtifactName "."
    assert sorted(f.kind for f in result.findings) == [
        "misconfiguration",
        "secret",
        "secret",
        "vulnerability",
        "vulnerability",
    ]
    ds002 = by_rule(result, "DS002")[0]
    assert ds002.kind == "misconfiguration"
    assert ds002.severity == "high"
    assert ds002.details["resolution"] == "Add 'USER <non root user name>' line to the Dockerfile"
    assert ds002.references == [
        "https://avd.aquasec.com/misconfig/ds002",
        "https://docs.docker.com/develop/develop-images/dockerfile_best-practices/",
    ]
    secrets = sorted(by_rule(result, "github-pat"), key=lambda f: f.details["target"])
    assert [f.details["target"] for f in secrets] == ["Dockerfile", "secret.txt"]
    assert [f.details["start_line"] for f in secrets] == [24, 1]
    assert secrets[0].details["match"] == "ENV GITHUB_PAT=*****"
    assert secrets[0].severity == "critical"
    assert secrets[0].package is None
    urllib3 = by_rule(result, "CVE-2021-33503")[0]
    assert urllib3.package is not None
    assert urllib3.package.path == "requirements.txt"  # lock file without PkgPath: the target


def test_k8s_older_shape_resources_and_images_from_target_text() -> None:
    result = parser.parse(load("kubernetes.json"))
    assert result.artifact is None
    assert len([f for f in result.findings if f.kind == "vulnerability"]) == 10
    assert len([f for f in result.findings if f.kind == "misconfiguration"]) == 10
    apt = next(f for f in by_rule(result, "CVE-2020-27350") if f.resource and f.resource.name == "redis-leader")
    assert apt.image is not None
    assert (apt.image.registry, apt.image.repository, apt.image.tag) == ("docker.io", "library/redis", "6.0.5")
    assert apt.resource is not None
    assert apt.resource.cluster == "arn:aws:eks:us-east-1:576036489467:cluster/monitoring-test-cluster"
    assert (apt.resource.namespace, apt.resource.kind) == ("default", "Deployment")
    follower = next(f for f in by_rule(result, "CVE-2020-27350") if f.resource and f.resource.name == "redis-follower")
    assert follower.image is not None
    assert follower.image.name == "gcr.io/google_samples/gb-redis-follower"
    assert follower.fingerprint != apt.fingerprint
    ksv001 = by_rule(result, "KSV001")
    assert len(ksv001) == 2
    assert {f.resource.name for f in ksv001 if f.resource} == {"redis-follower", "redis-leader"}
    assert len(result.evaluated) == 4  # two Deployments and two Services without failures


def test_k8s_resources_shape_cluster_and_metadata_image() -> None:
    result = parser.parse(load("k8s_cluster_resources_minikube.json"))
    assert len(result.evaluated) == 13
    assert len(by_rule(result, "KSV116")) == 13
    vault = next(f for f in by_rule(result, "KSV003") if f.resource and f.resource.kind == "StatefulSet")
    assert vault.resource is not None
    assert (vault.resource.cluster, vault.resource.namespace, vault.resource.name) == ("minikube", "default", "vault")
    assert vault.severity == "low"
    assert vault.details["avd_id"] == "AVD-KSV-0003"
    assert vault.image is not None
    assert (vault.image.name, vault.image.tag) == ("docker.io/hashicorp/vault", "1.14.0")
    assert vault.image.digest == "sha256:b2177a8bfe85f89ff403c9f51b8a00a6efd1be8e475bc2637390c36977df994d"


def test_only_failed_misconfigurations_are_findings() -> None:
    document = load("misconfigurations_and_secrets.json")
    passed = copy.deepcopy(document["Results"][1]["Misconfigurations"][0])
    passed["Status"] = "PASS"
    passed["ID"] = "DS001"
    document["Results"][1]["Misconfigurations"].append(passed)
    assert len(parser.parse(document).findings) == 5


def test_one_finding() -> None:
    document = load("severity_prio.json")
    del document["Results"][0]["Vulnerabilities"][1]
    result = parser.parse(document)
    assert [f.rule_id for f in result.findings] == ["CVE-2023-46218"]


def test_missing_or_null_results_and_vulnerabilities() -> None:
    document = load("scheme_2_no_vuln.json")
    document["Results"] = None
    assert parser.parse(document).findings == []
    document["Results"] = [{"Target": "x", "Vulnerabilities": None, "Misconfigurations": None}]
    assert parser.parse(document).findings == []
    del document["Results"]
    assert parser.parse(document).findings == []


def test_unknown_severity_and_image_labels() -> None:
    document = load("trivy-golden_alpine-310_image.json")
    document["Results"][0]["Vulnerabilities"][0]["Severity"] = "UNKNOWN"
    document["Metadata"]["ImageConfig"]["config"]["Labels"] = {"org.opencontainers.image.source": "https://github.com/example/payments"}
    result = parser.parse(document)
    assert result.findings[0].severity == "unknown"
    assert result.labels == {"org.opencontainers.image.source": "https://github.com/example/payments"}


def test_fingerprint_ignores_tag_description_and_report_time() -> None:
    first = parser.parse(load("trivy-golden_alpine-310_image.json"))
    document = load("trivy-golden_alpine-310_image.json")
    document["Metadata"]["RepoTags"] = ["ghcr.io/aquasecurity/trivy-test-images:alpine-311"]
    document["CreatedAt"] = "2030-01-01T00:00:00Z"
    for vuln in document["Results"][0]["Vulnerabilities"]:
        vuln["Description"] = "rewritten upstream"
        vuln["Title"] = "new title"
    second = parser.parse(document)
    assert second.artifact is not None
    assert second.artifact.tag == "alpine-311"
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in second.findings]


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    raw = (FIXTURES / "trivy" / "scheme_2_many_vulns.json").read_bytes()
    reordered = json.dumps(json.loads(raw), sort_keys=True, indent=7).encode()
    original = registry.parse_bytes(raw)[1]
    again = registry.parse_bytes(reordered)[1]
    assert sorted(f.fingerprint for f in original.findings) == sorted(f.fingerprint for f in again.findings)


def test_fingerprint_depends_on_repository_and_package_path() -> None:
    document = load("scheme_2_many_vulns.json")
    before = {f.rule_id: f.fingerprint for f in parser.parse(document).findings}
    document["Metadata"]["RepoTags"] = ["registry.example.com/teamdojo:latest"]
    document["Results"][2]["Vulnerabilities"][0]["PkgPath"] = "other/commons-compress-1.14"
    after = {f.rule_id: f.fingerprint for f in parser.parse(document).findings}
    assert before["CVE-2018-11771"] != after["CVE-2018-11771"]
    assert before["CVE-2020-15999"] != after["CVE-2020-15999"]


def test_fingerprint_ignores_pod_suffix_in_k8s_resources() -> None:
    document = load("kubernetes.json")
    document["Misconfigurations"][0]["Kind"] = "Pod"
    document["Misconfigurations"][0]["Name"] = "redis-follower-7d9f8b6c5-x2x4z"
    renamed = load("kubernetes.json")
    renamed["Misconfigurations"][0]["Kind"] = "Pod"
    renamed["Misconfigurations"][0]["Name"] = "redis-follower-5c6b7d8f9-k9q2w"
    renamed["Misconfigurations"][0]["Results"][0]["Misconfigurations"][0]["Message"] = "changed"
    first = [f.fingerprint for f in parser.parse(document).findings]
    second = [f.fingerprint for f in parser.parse(renamed).findings]
    assert first == second


def test_same_vulnerability_in_two_workloads_is_one_finding() -> None:
    document = load("kubernetes.json")
    copy_of_leader = copy.deepcopy(document["Vulnerabilities"][1])
    copy_of_leader["Name"] = "redis-leader-canary"
    document["Vulnerabilities"].append(copy_of_leader)
    result = parser.parse(document)
    assert len(result.findings) == 20
    apt = next(f for f in by_rule(result, "CVE-2020-27350") if f.image and f.image.repository == "library/redis")
    assert apt.details["also_seen"][0]["resource"]["name"] == "redis-leader-canary"


def test_hostile_text_in_a_vulnerability_is_cleaned_by_the_parser() -> None:
    # The parser builds vulnerabilities with Finding(cleaned=True): every field must be clean already.
    document = load("trivy-golden_alpine-310_image.json")
    document["Results"][0]["Vulnerabilities"][0].update(
        VulnerabilityID="CVE-2019-1549\ud800",
        Title="T\x00" * 400,
        Description="\u00e9" * 9000,
        PrimaryURL=" https://example.com/a\x00 ",
        References=["https://example.com/a", "https://example.com/b"],
        VendorIDs=["DSA-1\x00", "x" * 9000],
        CweIDs=["CWE-0079", "cwe-20"],
        SeveritySource="",
        CVSS={"\x00ghsa": {"V3Score": 7.25, "V3Vector": "CVSS:3.1/\x00AV:N"}},
        PkgPath="/" + "p" * 2000,
        Status="fixed\x00",
    )
    finding = parser.parse(document).findings[0]
    assert finding.rule_id == "CVE-2019-1549?"
    assert finding.title == "T" * 400
    assert finding.description == "\u00e9" * 8000
    assert finding.references == ["https://example.com/a", "https://example.com/b"]
    assert finding.cwe == ["CWE-79", "CWE-20"]
    assert finding.cvss == 7.2
    assert finding.package is not None
    assert finding.package.path == "p" * 999
    details = finding.details
    assert (details["cvss_source"], details["cvss_vector"], details["fix_state"]) == ("ghsa", "CVSS:3.1/AV:N", "fixed")
    assert details["vendor_ids"] == ["DSA-1", "x" * 8000]
    fields = {field.name: copy.deepcopy(getattr(finding, field.name)) for field in dataclasses.fields(finding)}
    assert Finding(**fields).to_dict() == finding.to_dict()


def test_timestamps_are_normalised_whatever_their_length() -> None:
    assert iso_timestamp("2021-01-01T00:00:00." + "1" * 100 + "Z") == "2021-01-01T00:00:00.111111+00:00"
    assert iso_timestamp(" 2021-01-01 00:00:00+0200 ") == "2021-01-01T00:00:00+02:00"
    assert [iso_timestamp(v) for v in ("2021-13-01T00:00:00Z", " ", "x" * 100, 20210101)] == [None] * 4


def test_legacy_schema_v1_is_refused_clearly() -> None:
    legacy = [{"Target": "alpine:3.10 (alpine 3.10.2)", "Type": "alpine", "Vulnerabilities": []}]
    assert registry.detect(legacy) is parser
    with pytest.raises(ParseError, match="schema v1"):
        registry.parse_document(legacy)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(SchemaVersion=3), "SchemaVersion 3 is not supported"),
        (lambda d: d.update(Results={"Target": "x"}), "Results: expected a list"),
        (
            lambda d: d["Results"][0]["Vulnerabilities"][0].update(Severity=4),
            r"Results\[0\].Vulnerabilities\[0\]: Severity",
        ),
        (lambda d: d["Results"][0]["Vulnerabilities"][1].pop("VulnerabilityID"), "missing VulnerabilityID"),
        (
            lambda d: d["Results"][0]["Vulnerabilities"][0].update(CVSS=[]),
            r"Vulnerabilities\[0\].CVSS: expected an object",
        ),
        (lambda d: d["Results"][0].update(Vulnerabilities=["CVE-1"]), r"Vulnerabilities\[0\]: expected an object"),
        (lambda d: d["Results"][0]["Vulnerabilities"][0].update(References="x"), "References: expected a list"),
    ],
)
def test_malformed_reports_raise_parse_error_with_a_path(mutate: Any, message: str) -> None:
    document = load("trivy-golden_alpine-310_image.json")
    mutate(document)
    with pytest.raises(ParseError, match=message):
        parser.parse(document)


def test_malformed_k8s_resource() -> None:
    document = load("kubernetes.json")
    document["Misconfigurations"][2] = "Service/redis-follower"
    with pytest.raises(ParseError, match=r"Misconfigurations\[2\]: expected an object"):
        parser.parse(document)


def test_detection_rejects_other_documents() -> None:
    assert not parser.detect({"runs": [], "version": "2.1.0"})
    assert not parser.detect({"bomFormat": "CycloneDX", "specVersion": "1.5"})
    assert not parser.detect({"apiVersion": "aquasecurity.github.io/v1alpha1", "kind": "VulnerabilityReport"})
    assert not parser.detect({"matches": [], "source": {}})
    assert not parser.detect([{"rule": "Terminal shell in container", "output": "x"}])
    assert not parser.detect("SchemaVersion")
    assert not parser.detect(None)
