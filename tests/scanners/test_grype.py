"""Grype JSON (current and early layouts) on real tool output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError
from scanners.grype import parser
from scanners.loader import load_document
from scanners.trivy import parser as trivy_parser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def raw(name: str) -> bytes:
    return (FIXTURES / "grype" / name).read_bytes()


def load(name: str) -> Any:
    return load_document(raw(name))


def by_rule(result: Any, rule_id: str) -> list[Any]:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("no_vuln.json", 0),
        ("fix_available.json", 1),
        ("grype-golden_image.json", 2),
        ("same_cve_different_paths.json", 2),
        ("many_vulns.json", 1509),
    ],
)
def test_every_fixture_is_detected_with_exact_counts(name: str, count: int) -> None:
    detected, result = registry.parse_bytes(raw(name))
    assert detected.name == "grype"
    assert registry.detect(load(name)) is parser
    assert len(result.findings) == count
    assert len({f.fingerprint for f in result.findings}) == count
    assert all(f.source == "grype" and f.kind == "vulnerability" for f in result.findings)


def test_no_vulnerabilities_still_names_the_image() -> None:
    result = parser.parse(load("no_vuln.json"))
    assert result.findings == []
    assert result.artifact is not None
    assert (result.artifact.name, result.artifact.tag) == ("docker.io/library/busybox", "latest")


def test_large_early_grype_report() -> None:
    result = parser.parse(load("many_vulns.json"))
    assert result.artifact is not None
    assert (result.artifact.name, result.artifact.tag) == ("docker.io/library/python", "3.6")
    assert result.artifact.digest == "sha256:56e428bb95594df86c86d62aa7b6ca5827ecf23a2a1e933288cba950d394fdbf"
    severities = [f.severity for f in result.findings]
    # 32 High, 613 Medium, 107 Low + 681 Negligible (-> low), 76 Unknown
    assert (severities.count("high"), severities.count("medium"), severities.count("low")) == (32, 613, 788)
    assert severities.count("unknown") == 76
    assert severities.count("critical") == 0
    negligible = next(f for f in by_rule(result, "CVE-2017-17740") if f.package and f.package.name == "libldap-2.4-2")
    assert negligible.severity == "low"
    assert negligible.cvss == 5.0  # cvssV2 only
    assert negligible.package is not None
    assert negligible.package.path == ""  # found in /var/lib/dpkg/status: an OS package, as Trivy reports it
    assert negligible.details["locations"][0] == "/var/lib/dpkg/status"
    assert negligible.references == ["https://security-tracker.debian.org/tracker/CVE-2017-17740"]
    mercurial = by_rule(result, "CVE-2019-3902")[0]
    assert mercurial.cvss == 5.9  # cvssV3 wins over cvssV2 5.8
    assert mercurial.package is not None
    assert mercurial.package.type == "python"
    assert mercurial.package.path == "usr/lib/python2.7/dist-packages/mercurial-4.8.2.egg-info"
    assert mercurial.details["matchers"] == ["python-matcher"]
    fixed = next(f for f in by_rule(result, "CVE-2020-36221") if f.package and f.package.name == "libldap-2.4-2")
    assert fixed.package is not None
    assert fixed.package.fixed_version == "2.4.47+dfsg-3+deb10u5"
    assert fixed.details["fix_state"] == "fixed"
    assert sum(1 for f in result.findings if f.package and f.package.fixed_version) == 32


def test_current_grype_fix_cvss_match_details() -> None:
    result = parser.parse(load("grype-golden_image.json"))
    low = by_rule(result, "CVE-1999-0001")[0]
    assert low.severity == "low"
    assert low.cvss == 8.2
    assert low.package is not None
    assert (low.package.name, low.package.version, low.package.type) == ("package-1", "1.1.1", "rpm")
    assert low.package.fixed_version == "1.2.1, 2.1.3, 3.4.0"
    assert low.package.path == "foo/bar/somefile-1.txt"
    assert low.details["fix_state"] == "fixed"
    assert low.details["fix_versions"] == ["1.2.1", "2.1.3", "3.4.0"]
    assert low.details["suggested_version"] == "1.2.1"
    assert low.details["match_types"] == ["exact-direct-match"]
    assert low.details["epss"]["epss"] == 0.03
    critical = by_rule(result, "CVE-1999-0002")[0]
    assert critical.severity == "critical"
    assert critical.details["match_types"] == ["exact-indirect-match"]
    assert critical.details["known_exploited"] is True
    assert critical.details["purl"] == "pkg:deb/package-2@2.2.2"


def test_cpe_match_keeps_the_match_type() -> None:
    result = parser.parse(load("fix_available.json"))
    java = result.findings[0]
    assert java.rule_id == "CVE-2009-3882"
    assert java.severity == "high"
    assert java.cvss == 7.5
    assert java.details["match_types"] == ["cpe-match"]
    assert java.details["fix_state"] == "fixed"
    assert java.package is not None
    assert java.package.version == "17.0.10+7-J-ms8m"  # the NUL in Grype's output is dropped
    assert java.package.path == "opt/java/openjdk/bin/java"
    assert java.references[0] == "https://nvd.nist.gov/vuln/detail/CVE-2009-3882"


def test_same_cve_at_different_paths_are_two_findings() -> None:
    result = parser.parse(load("same_cve_different_paths.json"))
    assert {f.package.path for f in result.findings if f.package} == {
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libc.so.6",
    }
    assert {f.details["fix_state"] for f in result.findings} == {"not-fixed"}
    assert result.findings[0].fingerprint != result.findings[1].fingerprint


def test_related_vulnerabilities_and_ghsa_identity() -> None:
    document = load("grype-golden_image.json")
    match = document["matches"][1]
    match["vulnerability"]["id"] = "GHSA-xxxx-yyyy-zzzz"
    match["vulnerability"]["cvss"] = []
    match["relatedVulnerabilities"] = [
        {"id": "CVE-2021-1234", "namespace": "nvd:cpe", "cvss": [{"version": "3.1", "metrics": {"baseScore": 9.1}}]}
    ]
    finding = parser.parse(document).findings[1]
    assert finding.rule_id == "GHSA-xxxx-yyyy-zzzz"
    assert finding.details["related_vulnerabilities"] == ["CVE-2021-1234"]
    assert finding.cvss == 9.1  # taken from the related NVD record
    renamed = copy.deepcopy(document)
    renamed["matches"][1]["relatedVulnerabilities"] = []
    assert parser.parse(renamed).findings[1].fingerprint == finding.fingerprint


def test_duplicate_matches_merge_match_types() -> None:
    document = load("fix_available.json")
    twin = copy.deepcopy(document["matches"][0])
    twin["matchDetails"][0]["type"] = "exact-direct-match"
    document["matches"].append(twin)
    result = parser.parse(document)
    assert len(result.findings) == 1
    assert result.findings[0].details["match_types"] == ["cpe-match", "exact-direct-match"]


def test_fingerprint_ignores_tag_digest_and_description() -> None:
    first = parser.parse(load("same_cve_different_paths.json"))
    document = load("same_cve_different_paths.json")
    document["source"]["target"]["userInput"] = "test-image:2.0"
    document["source"]["target"]["manifestDigest"] = "sha256:" + "a" * 64
    for match in document["matches"]:
        match["vulnerability"]["description"] = "rewritten"
    second = parser.parse(document)
    assert second.artifact is not None
    assert second.artifact.tag == "2.0"
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in second.findings]


def test_fingerprint_ignores_key_order_and_whitespace() -> None:
    reordered = json.dumps(json.loads(raw("grype-golden_image.json")), sort_keys=True, indent=5).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw("grype-golden_image.json"))[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    ]


def test_same_vulnerability_as_trivy_has_the_same_fingerprint() -> None:
    grype = parser.parse(load("many_vulns.json"))
    ldap = next(f for f in by_rule(grype, "CVE-2020-36221") if f.package and f.package.name == "libldap-2.4-2")
    trivy_report = {
        "SchemaVersion": 2,
        "ArtifactName": "python:3.6.15",
        "ArtifactType": "container_image",
        "Metadata": {"RepoTags": ["python:3.6.15"]},
        "Results": [
            {
                "Target": "python:3.6.15 (debian 10.10)",
                "Class": "os-pkgs",
                "Type": "debian",
                "Vulnerabilities": [{"VulnerabilityID": "CVE-2020-36221", "PkgName": "libldap-2.4-2", "Severity": "HIGH"}],
            }
        ],
    }
    assert trivy_parser.parse(trivy_report).findings[0].fingerprint == ldap.fingerprint


def test_directory_scan_has_no_image() -> None:
    document = load("grype-golden_image.json")
    document["source"] = {"type": "directory", "target": "/src/app"}
    result = parser.parse(document)
    assert result.artifact is None
    assert result.findings[0].image is None
    assert len(result.findings) == 2


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(matches={}), "matches: expected a list"),
        (lambda d: d["matches"][1].pop("artifact"), r"matches\[1\].artifact: expected an object"),
        (lambda d: d["matches"][0]["vulnerability"].update(id=""), r"matches\[0\].vulnerability: missing id"),
        (lambda d: d["matches"][0]["vulnerability"].update(severity=7), "severity is not a string"),
        (lambda d: d["matches"][0]["vulnerability"].update(cvss={}), r"vulnerability.cvss: expected a list"),
        (lambda d: d["matches"][0]["vulnerability"]["fix"].update(versions="1.2"), "fix.versions: expected a list"),
        (lambda d: d["matches"][0]["artifact"].update(locations=["/x"]), r"locations\[0\]: expected an object"),
    ],
)
def test_malformed_reports_raise_parse_error_with_a_path(mutate: Any, message: str) -> None:
    document = load("grype-golden_image.json")
    mutate(document)
    with pytest.raises(ParseError, match=message):
        parser.parse(document)


def test_detection_rejects_other_documents() -> None:
    assert not parser.detect({"matches": {}, "descriptor": {"name": "grype"}})
    assert not parser.detect({"SchemaVersion": 2, "Results": []})
    assert not parser.detect({"runs": [], "version": "2.1.0"})
    assert not parser.detect({"bomFormat": "CycloneDX", "vulnerabilities": []})
    assert not parser.detect([{"matches": []}])
