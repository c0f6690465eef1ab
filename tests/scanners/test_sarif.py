"""SARIF 2.1.0 logs from Trivy, Grype, CodeQL, shellcheck (bash), Checkov, KICS, Dockle on real tool output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError
from scanners.loader import load_document
from scanners.sarif import parser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def raw(name: str) -> bytes:
    return (FIXTURES / "sarif" / name).read_bytes()


def load(name: str) -> Any:
    return load_document(raw(name))


def by_rule(result: Any, rule_id: str) -> list[Any]:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("no_runs.sarif", 0),
        ("trivy_config_terraform.sarif", 1),
        ("grype-golden_image.sarif", 2),
        ("suppression_test.sarif", 2),  # 5 results, 3 suppressed
        ("kics_docker-compose.sarif", 2),  # 3 results, one of kind "pass"
        ("checkov_dockerfile.sarif", 4),
        ("dockle_0_3_15.sarif", 4),
        ("trivy-golden_alpine-310_image-vulns.sarif", 4),
        ("bash-report.sarif", 12),  # 27 results at 12 (rule, uri, partialFingerprints) places
        ("codeQL-output.sarif", 72),
    ],
)
def test_every_fixture_is_detected_with_exact_counts(name: str, count: int) -> None:
    detected, result = registry.parse_bytes(raw(name))
    assert detected.name == "sarif"
    assert registry.detect(load(name)) is parser
    assert len(result.findings) == count
    assert len({f.fingerprint for f in result.findings}) == count
    assert all(f.source == "sarif" for f in result.findings)


def test_no_runs_is_an_empty_valid_log() -> None:
    document = load("no_runs.sarif")
    assert document["runs"] == []
    result = parser.parse(document)
    assert result.findings == []
    assert result.artifact is None


def test_security_severity_on_the_rule_wins_over_level() -> None:
    result = parser.parse(load("grype-golden_image.sarif"))
    note = by_rule(result, "CVE-1999-0001-package-1")[0]
    assert note.details["level"] == "note"
    assert note.severity == "high"  # security-severity 8.2
    assert note.cvss == 8.2
    assert note.kind == "vulnerability"
    assert note.details["uri"] == "user-input/somefile-1.txt"
    assert note.details["partial_fingerprints"] == {
        "primaryLocationLineHash": "efe125c0a2b4bdafe476b69ba51a49734780c62b93803950319056acebe4323f:1"
    }
    error = by_rule(result, "CVE-1999-0002-package-2")[0]
    assert error.severity == "high"  # security-severity 8.5, level error
    assert error.title == "CVE-1999-0002 critical vulnerability for package-2 package"


def test_security_severity_thresholds_and_result_properties() -> None:
    document = load("trivy_config_terraform.sarif")
    rule_props = document["runs"][0]["tool"]["driver"]["rules"][0]["properties"]
    result = document["runs"][0]["results"][0]
    expectations = []
    for score, expected in (("9.0", "critical"), ("7.0", "high"), ("6.9", "medium"), ("4.0", "medium"), ("0.1", "low")):
        rule_props["security-severity"] = score
        expectations.append((parser.parse(document).findings[0].severity, expected))
    rule_props["security-severity"] = "3.9"
    result["properties"] = {"security-severity": "9.8"}
    expectations.append((parser.parse(document).findings[0].severity, "critical"))
    assert [got for got, _ in expectations] == [want for _, want in expectations]


def test_level_mapping_and_defaults() -> None:
    document = load("dockle_0_3_15.sarif")
    results = document["runs"][0]["results"]
    results[0]["level"] = "warning"
    results[1]["level"] = "none"
    del results[2]["level"]
    by_id = {f.rule_id: f.severity for f in parser.parse(document).findings}
    assert by_id == {"CIS-DI-0010": "medium", "CIS-DI-0005": "info", "CIS-DI-0006": "medium", "CIS-DI-0008": "low"}
    untouched = {f.rule_id: f.severity for f in parser.parse(load("dockle_0_3_15.sarif")).findings}
    assert untouched == {"CIS-DI-0010": "high", "CIS-DI-0005": "low", "CIS-DI-0006": "low", "CIS-DI-0008": "low"}


def test_codeql_severity_from_rule_default_configuration_via_rule_index() -> None:
    result = parser.parse(load("codeQL-output.sarif"))
    severities = [f.severity for f in result.findings]
    assert (severities.count("high"), severities.count("medium"), severities.count("low")) == (11, 4, 57)
    assert len(by_rule(result, "py/unused-import")) == 40
    sql = sorted(by_rule(result, "py/sql-injection"), key=lambda f: f.details["start_line"])
    assert [(f.details["uri"], f.details["start_line"]) for f in sql] == [
        ("bad/libuser.py", 12),
        ("bad/libuser.py", 25),
    ]
    assert sql[0].severity == "high"
    assert sql[0].cwe == ["CWE-89"]
    assert sql[0].kind == "misconfiguration"


def test_rule_index_fallback_when_rule_id_is_absent() -> None:
    document = load("codeQL-output.sarif")
    for item in document["runs"][0]["results"]:
        del item["ruleId"]
    result = parser.parse(document)
    assert len(result.findings) == 72
    assert len(by_rule(result, "py/sql-injection")) == 2


def test_suppressions() -> None:
    result = parser.parse(load("suppression_test.sarif"))
    assert sorted(f.rule_id for f in result.findings) == ["TST0004", "TST0005"]
    assert {f.severity for f in result.findings} == {"medium"}  # no level, no default: warning
    document = load("suppression_test.sarif")
    document["runs"][0]["results"][0]["suppressions"][0]["status"] = "underReview"
    document["runs"][0]["results"][1]["suppressions"][0]["status"] = "rejected"
    document["runs"][0]["results"][2]["suppressions"][0]["status"] = "accepted"
    assert sorted(f.rule_id for f in parser.parse(document).findings) == ["TST0001", "TST0002", "TST0004", "TST0005"]


def test_kics_kind_fail_without_level_uses_rule_default() -> None:
    result = parser.parse(load("kics_docker-compose.sarif"))
    socket = by_rule(result, "d6355c88-1e8d-49e9-b2f2-f8a1ca12c75b")
    assert [f.details["uri"] for f in socket] == ["docker-compose-prod-postgres.yml"]  # the "pass" one is dropped
    assert socket[0].severity == "high"  # defaultConfiguration.level error
    assert socket[0].details["start_line"] == 34
    secret = by_rule(result, "9fb1cd65-7a07-4531-9bcf-47589d0f82d6")[0]
    assert secret.kind == "secret"  # rule "Passwords And Secrets - Encryption Key"


def test_checkov_and_trivy_config() -> None:
    checkov = parser.parse(load("checkov_dockerfile.sarif"))
    assert {f.rule_id for f in checkov.findings} == {"CKV_DOCKER_2"}
    assert {f.severity for f in checkov.findings} == {"high"}
    assert "frontend/docker/Dockerfile" in {f.details["uri"] for f in checkov.findings}
    trivy = parser.parse(load("trivy_config_terraform.sarif")).findings[0]
    assert trivy.rule_id == "AVD-AZU-0014"
    assert trivy.severity == "medium"  # security-severity 5.5
    assert trivy.cvss is None  # not a vulnerability
    assert trivy.title == "Ensure that the expiration date is set on all keys"
    assert trivy.references == ["https://avd.aquasec.com/misconfig/avd-azu-0014"]
    assert trivy.details["start_line"] == 164


def test_trivy_image_sarif_package_and_image() -> None:
    result = parser.parse(load("trivy-golden_alpine-310_image-vulns.sarif"))
    assert result.artifact is not None
    assert (result.artifact.name, result.artifact.tag) == ("ghcr.io/aquasecurity/trivy-test-images", "alpine-310")
    ssl = next(f for f in by_rule(result, "CVE-2019-1551") if f.package and f.package.name == "libssl1.1")
    assert ssl.kind == "vulnerability"
    assert ssl.severity == "medium"
    assert ssl.cvss == 5.3
    assert ssl.package is not None
    assert (ssl.package.version, ssl.package.fixed_version) == ("1.1.1c-r0", "1.1.1d-r2")
    assert ssl.image is not None
    assert ssl.image.repository == "aquasecurity/trivy-test-images"
    assert ssl.references == ["https://avd.aquasec.com/nvd/cve-2019-1551"]


def test_bash_report_repeats_on_one_line_are_one_finding() -> None:
    result = parser.parse(load("bash-report.sarif"))
    assert {f.severity for f in result.findings} == {"low"}
    assert sum(f.details.get("occurrences", 1) for f in result.findings) == 27
    assert result.findings[0].occurred_at == "2021-03-08T15:39:40+00:00"


def test_several_runs_in_one_log() -> None:
    document = load("checkov_dockerfile.sarif")
    document["runs"] += load("dockle_0_3_15.sarif")["runs"] + load("no_runs.sarif")["runs"]
    result = parser.parse(document)
    assert len(result.findings) == 8
    assert {f.details["tool"] for f in result.findings} == {"Checkov", "Dockle"}


def test_run_without_results_and_baseline_absent() -> None:
    document = load("dockle_0_3_15.sarif")
    rules_only = copy.deepcopy(document["runs"][0])
    del rules_only["results"]
    document["runs"].append(rules_only)
    document["runs"][0]["results"][0]["baselineState"] = "absent"
    assert len(parser.parse(document).findings) == 3


def test_one_finding() -> None:
    result = parser.parse(load("trivy_config_terraform.sarif"))
    assert len(result.findings) == 1


def test_fingerprint_ignores_message_and_whitespace_but_not_location() -> None:
    first = parser.parse(load("checkov_dockerfile.sarif"))
    document = load("checkov_dockerfile.sarif")
    for item in document["runs"][0]["results"]:
        item["message"]["text"] = "reworded by a newer Checkov"
    document["runs"][0]["tool"]["driver"]["version"] = "3.0.0"
    second = parser.parse(document)
    assert [f.fingerprint for f in first.findings] == [f.fingerprint for f in second.findings]
    reordered = json.dumps(json.loads(raw("codeQL-output.sarif")), sort_keys=True, indent=1).encode()
    assert sorted(f.fingerprint for f in registry.parse_bytes(raw("codeQL-output.sarif"))[1].findings) == sorted(
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    )
    document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 7
    assert parser.parse(document).findings[0].fingerprint != first.findings[0].fingerprint


def test_fingerprint_uses_partial_fingerprints_over_line() -> None:
    document = load("grype-golden_image.sarif")
    before = parser.parse(document).findings[0].fingerprint
    document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 40
    assert parser.parse(document).findings[0].fingerprint == before


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("runs"), "not a SARIF log: missing 'runs'"),
        (lambda d: d.update(runs=None), "runs is null"),
        (lambda d: d.update(version="2.0.0"), "SARIF version '2.0.0' is not supported"),
        (lambda d: d["runs"][0].pop("tool"), r"runs\[0\].tool: expected an object"),
        (lambda d: d["runs"][0]["results"][1].update(level="fatal"), r"runs\[0\].results\[1\]: level 'fatal'"),
        (lambda d: d["runs"][0]["results"][0].pop("ruleId"), r"runs\[0\].results\[0\]: missing ruleId"),
        (lambda d: d["runs"][0].update(results={}), r"runs\[0\].results: expected a list"),
        (
            lambda d: d["runs"][0]["results"][0].update(suppressions="yes"),
            r"results\[0\].suppressions: expected a list",
        ),
    ],
)
def test_malformed_logs_raise_parse_error_with_a_path(mutate: Any, message: str) -> None:
    document = load("dockle_0_3_15.sarif")
    mutate(document)
    with pytest.raises(ParseError, match=message):
        parser.parse(document)


def test_detection_rejects_other_documents() -> None:
    assert not parser.detect({"SchemaVersion": 2, "Results": []})
    assert not parser.detect({"bomFormat": "CycloneDX", "specVersion": "1.5"})
    assert not parser.detect({"runs": [], "version": 2})
    assert not parser.detect([{"runs": []}])
