"""kube-bench JSON parser, tested on real kube-bench output (tests/fixtures/kube-bench)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError, ResourceRef
from scanners.fingerprint import make_fingerprint
from scanners.kube_bench import parser
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kube-bench"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently (python over the raw JSON): results with status FAIL or WARN.
COUNTS = {
    "kube-bench-report-many-vuln.json": 4,
    "kube-bench-report-zero-vuln.json": 0,
}


def test_every_fixture_is_counted() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md") == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} <= {"compliance"}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detected_as_kube_bench_only(name: str) -> None:
    assert registry.detect(load(name)).name == "kube-bench"


def test_parser_identity() -> None:
    assert parser.name == "kube-bench"
    assert parser.stream == "scan"


def test_many_vuln_fields() -> None:
    findings = parser.parse(load("kube-bench-report-many-vuln.json")).findings
    assert [f.rule_id for f in findings] == ["3.1.1", "4.1.2", "4.1.5", "4.2.11"]
    # 3.1.1 is a manual (unscored) FAIL: medium; scored FAILs are high.
    assert [f.severity for f in findings] == ["medium", "high", "high", "high"]
    manual = findings[0]
    assert manual.title == "Client certificate authentication should not be used for users(Manual)"
    assert manual.details["scored"] is False
    assert manual.details["status"] == "FAIL"
    assert manual.details["node_type"] == "node"
    assert manual.details["benchmark_version"] == "1.5"
    assert manual.details["section"] == "3.1"
    assert manual.description.startswith("Alternative mechanisms provided by Kubernetes")
    assert manual.resource == ResourceRef(cluster="", namespace="", kind="Node", name="node")
    assert findings[1].fingerprint == make_fingerprint("compliance", "kube-bench", "", "node", "4.1.2")
    assert len({f.fingerprint for f in findings}) == 4


def test_controls_wrapper_and_single_control() -> None:
    controls = load("kube-bench-report-many-vuln.json")
    wrapped = {"Controls": controls, "Totals": {"total_pass": 20, "total_fail": 4, "total_warn": 0, "total_info": 0}}
    assert parser.detect(wrapped)
    assert registry.detect(wrapped).name == "kube-bench"
    assert [f.fingerprint for f in parser.parse(wrapped).findings] == [f.fingerprint for f in parser.parse(controls).findings]
    single = controls[1]
    assert parser.detect(single)
    assert [f.rule_id for f in parser.parse(single).findings] == ["4.1.2", "4.1.5", "4.2.11"]


def test_warn_is_low_and_pass_info_are_not_findings() -> None:
    control = copy.deepcopy(load("kube-bench-report-zero-vuln.json")[0])
    results = control["tests"][0]["results"]
    results[0]["status"] = "WARN"
    results[1]["status"] = "INFO"
    (finding,) = parser.parse(control).findings
    assert finding.severity == "low"
    assert finding.rule_id == results[0]["test_number"]


def test_fingerprint_ignores_descriptions_and_order() -> None:
    raw = (FIXTURES / "kube-bench-report-many-vuln.json").read_bytes()
    document = json.loads(raw)
    document[1]["tests"][0]["results"][1]["test_desc"] = "changed"
    document[1]["tests"][0]["results"][1]["remediation"] = "changed"
    document[1]["version"] = "1.6"
    reordered = json.dumps(document, sort_keys=True).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw)[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(reordered)[1].findings
    ]
    master = copy.deepcopy(document)
    master[1]["node_type"] = "master"
    assert parser.parse(master).findings[1].fingerprint != parser.parse(document).findings[1].fingerprint


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"dockerbenchsecurity": "1.3.6", "tests": [], "node_type": "x"})
    assert not parser.detect({"tests": []})
    assert not parser.detect([])
    assert not parser.detect({"Controls": "none"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[1]["tests"][0]["results"][1].pop("test_number"), "[1].tests[0].results[1]: missing test_number"),
        (lambda d: d[1]["tests"][0]["results"][1].update(status="BROKEN"), "unknown status 'BROKEN'"),
        (lambda d: d[1]["tests"][0]["results"][1].update(scored="yes"), "[1].tests[0].results[1]: scored is not"),
        (lambda d: d[1]["tests"][0].update(results={}), "[1].tests[0].results: expected a list, got an object"),
        (lambda d: d[0].update(tests=None), "[0].tests: expected a list, got null"),
        (lambda d: d.append("control"), "[2]: expected an object, got a string"),
    ],
)
def test_malformed_reports(mutate: Any, message: str) -> None:
    document = copy.deepcopy(load("kube-bench-report-many-vuln.json"))
    mutate(document)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(document)


def test_wrapper_with_bad_controls() -> None:
    with pytest.raises(ParseError, match=re.escape("Controls: expected a list, got a string")):
        parser.parse({"Controls": "none"})
