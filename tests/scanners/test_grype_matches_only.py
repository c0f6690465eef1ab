"""A Grype report of only ``matches`` (no source, descriptor or distro), as DefectDojo received one with
EPSS data, is detected and parsed as Grype (fixture: tests/fixtures/grype/SOURCE.md)."""

from __future__ import annotations

import json

from scanners import registry
from scanners.loader import load_document
from tests.conftest import fixture_bytes

MATCHES_ONLY = "grype/anchore_grype_epss_problem.json"


def test_a_report_of_only_matches_is_detected_as_grype() -> None:
    document = load_document(fixture_bytes(MATCHES_ONLY))

    assert sorted(document) == ["matches"]
    assert registry.detect(document).name == "grype"


def test_a_report_of_only_matches_parses_with_its_epss_and_no_image() -> None:
    parser, result = registry.parse_bytes(fixture_bytes(MATCHES_ONLY), None)

    (finding,) = result.findings
    assert (finding.rule_id, finding.severity, finding.cvss) == ("GHSA-4374-p667-p6c8", "high", 7.5)
    assert finding.package is not None and (finding.package.name, finding.package.fixed_version) == ("golang.org/x/net", "0.17.0")
    assert finding.details["epss"]["epss"] == 0.00163
    assert parser.name == "grype" and result.artifact is None and finding.image is None


def test_a_document_with_matches_and_foreign_keys_is_not_taken_for_grype() -> None:
    document = {**json.loads(fixture_bytes(MATCHES_ONLY)), "runs": []}
    shapeless = {"matches": [{"rule": "x"}]}

    assert not registry.get_parser("grype").detect(document)
    assert [p.name for p in registry.PARSERS if p.detect(shapeless)] == []
    assert [p.name for p in registry.PARSERS if p.detect(document)] == []
