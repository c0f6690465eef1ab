"""CycloneDX 1.4-1.7 JSON BOMs with vulnerabilities and VEX analysis, on real tool output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError
from scanners.cyclonedx import parser
from scanners.grype import parser as grype_parser
from scanners.loader import load_document
from scanners.trivy import parser as trivy_parser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def raw(name: str, folder: str = "cyclonedx") -> bytes:
    return (FIXTURES / folder / name).read_bytes()


def load(name: str, folder: str = "cyclonedx") -> Any:
    return load_document(raw(name, folder))


def by_rule(result: Any, rule_id: str) -> list[Any]:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("trivy-golden_conda_plain-sbom_no-vulns.json", 0),
        ("no-severity.json", 1),
        ("valid-vulnerability-1.4.json", 1),
        ("secobserve_grype_2.json", 1),
        ("grype-golden_image_with-vulnerabilities.json", 2),
        ("trivy-golden_fluentd-image_with-vulnerabilities.json", 3),
        ("log4j.json", 8),
        ("secobserve_vex_integrated.json", 13),
    ],
)
def test_every_fixture_is_detected_with_exact_counts(name: str, count: int) -> None:
    detected, result = registry.parse_bytes(raw(name))
    assert detected.name == "cyclonedx"
    assert registry.detect(load(name)) is parser
    assert len(result.findings) == count
    assert len({f.fingerprint for f in result.findings}) == count
    assert all(f.source == "cyclonedx" and f.kind == "vulnerability" for f in result.findings)


def test_plain_sbom_keeps_components() -> None:
    result = parser.parse(load("trivy-golden_conda_plain-sbom_no-vulns.json"))
    assert result.findings == []
    assert result.components == [
        {"name": "openssl", "version": "1.1.1q", "purl": "pkg:conda/openssl@1.1.1q", "type": "library"},
        {"name": "pip", "version": "22.2.2", "purl": "pkg:conda/pip@22.2.2", "type": "library"},
    ]
    document = load("trivy-golden_conda_plain-sbom_no-vulns.json")
    del document["vulnerabilities"]
    assert parser.parse(document).findings == []


def test_trivy_bom_severity_cvss_fix_and_path() -> None:
    result = parser.parse(load("trivy-golden_fluentd-image_with-vulnerabilities.json"))
    assert result.artifact is None  # the golden file names a tarball
    assert len(result.components) == 4
    idn = by_rule(result, "CVE-2019-18224")[0]
    assert idn.severity == "critical"  # source debian has no rating: NVD's CVSSv31 rating
    assert idn.cvss == 9.8
    assert idn.cwe == ["CWE-787"]
    assert idn.package is not None
    assert (idn.package.name, idn.package.version, idn.package.fixed_version) == (
        "libidn2-0",
        "2.0.5-1",
        "2.0.5-1+deb10u1",
    )
    assert idn.package.type == "deb"
    assert idn.package.path == ""
    assert idn.references[0] == "https://salsa.debian.org/security-tracker-team/security-tracker"
    bash = by_rule(result, "CVE-2019-18276")[0]
    assert bash.severity == "low"  # the debian rating, as Trivy reports it
    assert bash.cvss == 7.8
    assert bash.package is not None
    assert bash.package.fixed_version == ""
    gem = by_rule(result, "CVE-2020-8165")[0]
    assert gem.severity == "high"  # ghsa rating
    assert gem.package is not None
    assert gem.package.path == "var/lib/gems/2.5.0/specifications/activesupport-6.0.2.1.gemspec"
    assert gem.occurred_at == "2021-08-25T12:20:30+00:00"


def test_same_vulnerability_as_trivy_json_has_the_same_fingerprint() -> None:
    document = load("trivy-golden_fluentd-image_with-vulnerabilities.json")
    document["metadata"]["component"]["properties"].append(
        {
            "name": "aquasecurity:trivy:RepoTag",
            "value": "ghcr.io/aquasecurity/trivy-test-images:fluentd-multiple-lockfiles",
        }
    )
    bom = parser.parse(document)
    assert bom.artifact is not None
    assert bom.artifact.name == "ghcr.io/aquasecurity/trivy-test-images"
    trivy = trivy_parser.parse(load("trivy-golden_fluentd-image_os-and-ruby-gems.json", "trivy"))
    assert {f.rule_id: f.fingerprint for f in trivy.findings} == {
        f.rule_id: f.fingerprint for f in bom.findings if f.rule_id in ("CVE-2019-18224", "CVE-2020-8165")
    }


def test_grype_bom_matches_grype_json_identity() -> None:
    result = parser.parse(load("grype-golden_image_with-vulnerabilities.json"))
    assert result.artifact is not None
    assert result.artifact.name == "docker.io/library/user-input"
    assert result.artifact.digest == "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5"
    low = by_rule(result, "CVE-1999-0001")[0]
    assert low.severity == "low"  # Grype's word, although the CVSS score is 8.2
    assert low.cvss == 8.2
    assert low.package is not None
    assert (low.package.name, low.package.type, low.package.path) == ("package-1", "rpm", "foo/bar/somefile-1.txt")
    critical = by_rule(result, "CVE-1999-0002")[0]
    assert critical.severity == "critical"
    assert critical.details["purl"] == "pkg:deb/package-2@2.2.2"
    grype = grype_parser.parse(load("grype-golden_image.json", "grype"))
    assert sorted(f.fingerprint for f in grype.findings) == sorted(f.fingerprint for f in result.findings)


def test_grype_bom_container_with_tag_and_ratings_without_method() -> None:
    result = parser.parse(load("secobserve_grype_2.json"))
    assert result.artifact is not None
    assert (result.artifact.name, result.artifact.tag) == ("docker.io/example/example-backend", "dev")
    pip = result.findings[0]
    assert pip.rule_id == "CVE-2018-20225"
    assert pip.severity == "high"
    assert pip.cvss == 7.8  # CVSSv31 over CVSSv2 6.8
    assert pip.references[0] == "https://nvd.nist.gov/vuln/detail/CVE-2018-20225"  # source.url
    assert "https://bugzilla.redhat.com/show_bug.cgi?id=1835736" in pip.references
    log4j = parser.parse(load("log4j.json"))
    log4shell = by_rule(log4j, "CVE-2021-44228")[0]
    assert log4shell.severity == "critical"
    assert log4shell.cvss == 10.0
    assert log4shell.package is not None
    assert (log4shell.package.name, log4shell.package.version) == ("log4j-core", "2.13.2")
    assert log4shell.details["vex_state"] == "in_triage"
    assert log4shell.status_hint == ""
    assert sorted(f.severity for f in log4j.findings) == ["critical"] * 4 + ["high"] + ["medium"] * 3


def test_vex_analysis_states_become_status_hints() -> None:
    result = parser.parse(load("secobserve_vex_integrated.json"))
    assert len(result.components) == 9
    assert {f.severity for f in result.findings} == {"unknown"}  # no ratings at all
    hinted = [f for f in result.findings if f.status_hint]
    assert [(f.rule_id, f.status_hint) for f in hinted] == [("CVE-2023-49083", "not_affected")]
    assert hinted[0].details["vex_justification"] == "requires_configuration"
    assert hinted[0].details["vex_detail"] == "Not affected for VEX test case"
    assert hinted[0].package is not None
    assert hinted[0].package.name == "cryptography"
    assert len([f for f in result.findings if f.details["vex_state"] == "exploitable"]) == 11
    single = parser.parse(load("valid-vulnerability-1.4.json")).findings[0]
    assert single.rule_id == "SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111"
    assert single.status_hint == "not_affected"
    assert single.details["vex_response"] == ["will_not_fix", "update"]
    assert single.cwe == ["CWE-184", "CWE-502"]
    assert single.cvss == 9.8
    assert single.package is not None
    assert single.package.name == "com.fasterxml.jackson.core:jackson-databind"


def test_other_vex_states() -> None:
    document = load("secobserve_vex_integrated.json")
    states = ["false_positive", "resolved", "resolved_with_pedigree", "exploitable"]
    for vuln, state in zip(document["vulnerabilities"], states, strict=False):
        vuln["analysis"]["state"] = state
    hints = [f.status_hint for f in parser.parse(document).findings[:4]]
    assert hints == ["false_positive", "resolved", "resolved", ""]


def test_unknown_ref_is_kept_as_package_name_and_score_decides_severity() -> None:
    finding = parser.parse(load("no-severity.json")).findings[0]
    assert finding.severity == "critical"  # no severity word: CVSS 10.0
    assert finding.cvss == 10.0
    assert finding.package is not None
    assert finding.package.name == "gerbwetbqt"
    assert finding.image is None
    assert finding.occurred_at == "2025-10-28T14:38:10+00:00"


def test_one_finding_per_affected_ref() -> None:
    document = load("valid-vulnerability-1.4.json")
    document["vulnerabilities"][0]["affects"].append({"ref": "pkg:maven/com.example/other@1.0"})
    result = parser.parse(document)
    assert [f.package.name for f in result.findings if f.package] == [
        "com.fasterxml.jackson.core:jackson-databind",
        "pkg:maven/com.example/other@1.0",
    ]


def test_fingerprint_ignores_version_digest_description_and_order() -> None:
    first = parser.parse(load("grype-golden_image_with-vulnerabilities.json"))
    document = load("grype-golden_image_with-vulnerabilities.json")
    document["metadata"]["component"]["version"] = "sha256:" + "b" * 64
    document["metadata"]["timestamp"] = "2031-01-01T00:00:00Z"
    for vuln in document["vulnerabilities"]:
        vuln["description"] = "new text"
    second = parser.parse(document)
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in second.findings]
    reordered = json.dumps(json.loads(raw("log4j.json")), sort_keys=True, indent=4).encode()
    assert sorted(f.fingerprint for f in registry.parse_bytes(raw("log4j.json"))[1].findings) == sorted(
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    )


def test_nested_components_are_flattened() -> None:
    document = load("trivy-golden_conda_plain-sbom_no-vulns.json")
    inner = copy.deepcopy(document["components"][0])
    inner["bom-ref"] = "inner"
    inner["name"] = "libssl"
    document["components"][1]["components"] = [inner]
    assert [c["name"] for c in parser.parse(document).components] == ["openssl", "pip", "libssl"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(specVersion="2.0"), "specVersion '2.0' is not a CycloneDX 1.x version"),
        (lambda d: d.update(vulnerabilities={}), "vulnerabilities: expected a list"),
        (lambda d: d["vulnerabilities"][0].pop("id"), r"vulnerabilities\[0\]: missing id"),
        (lambda d: d["vulnerabilities"][1]["ratings"][0].update(severity=3), r"ratings\[0\]: severity is not a string"),
        (lambda d: d["vulnerabilities"][0].update(affects=[{"ref": ""}]), r"affects\[0\]: missing ref"),
        (lambda d: d["vulnerabilities"][0].update(cwes=["79"]), r"cwes\[0\]: expected a number"),
        (lambda d: d.update(components="x"), "components: expected a list"),
    ],
)
def test_malformed_boms_raise_parse_error_with_a_path(mutate: Any, message: str) -> None:
    document = load("grype-golden_image_with-vulnerabilities.json")
    mutate(document)
    with pytest.raises(ParseError, match=message):
        parser.parse(document)


def test_detection_rejects_other_documents() -> None:
    assert not parser.detect({"bomFormat": "SPDX", "specVersion": "1.5"})
    assert not parser.detect({"spdxVersion": "SPDX-2.3"})
    assert not parser.detect({"SchemaVersion": 2, "Results": []})
    assert not parser.detect([{"bomFormat": "CycloneDX"}])
