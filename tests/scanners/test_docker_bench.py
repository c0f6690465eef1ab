"""docker-bench-security JSON log parser, tested on real logs (tests/fixtures/docker-bench)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scanners import registry
from scanners.base import ParseError, ResourceRef
from scanners.docker_bench import parser
from scanners.fingerprint import make_fingerprint
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker-bench"


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


# Counted independently (python over the raw JSON): results with result WARN.
COUNTS = {
    "docker-bench-report-many-vulns.json": 33,
    "docker-bench-report-zero-vulns.json": 0,
}


def test_every_fixture_is_counted() -> None:
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".md") == sorted(COUNTS)


@pytest.mark.parametrize(("name", "count"), sorted(COUNTS.items()))
def test_finding_counts(name: str, count: int) -> None:
    result = parser.parse(load(name))
    assert len(result.findings) == count
    assert {f.kind for f in result.findings} <= {"compliance"}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_detected_as_docker_bench_only(name: str) -> None:
    assert registry.detect(load(name)).name == "docker-bench"


def test_parser_identity() -> None:
    assert parser.name == "docker-bench"
    assert parser.stream == "scan"


def test_severity_split() -> None:
    findings = parser.parse(load("docker-bench-report-many-vulns.json")).findings
    # Daemon network exposure / transport checks are high: 2.2 (inter-container traffic on the default bridge),
    # 2.5 (insecure registries), 5.13 (ports bound to all host interfaces).  Everything else is medium.
    assert sorted(f.rule_id for f in findings if f.severity == "high") == ["2.2", "2.5", "5.13"]
    assert len([f for f in findings if f.severity == "medium"]) == 30


def test_fields() -> None:
    findings = {f.rule_id: f for f in parser.parse(load("docker-bench-report-many-vulns.json")).findings}
    bridge = findings["2.2"]
    assert bridge.title == "Ensure network traffic is restricted between containers on the default bridge (Scored)"
    assert bridge.details["section"] == "2"
    assert bridge.details["section_desc"] == "Docker daemon configuration"
    assert bridge.details["docker_bench_version"] == "1.3.6"
    assert bridge.occurred_at == "2022-08-01T16:29:55+00:00"
    assert bridge.resource == ResourceRef(kind="Host", name="")
    assert bridge.fingerprint == make_fingerprint("compliance", "docker-bench", "", "2.2")
    user = findings["4.1"]
    assert user.details["details"] == "running as root:  mobsf_postgres_1"
    assert user.details["items"] == ["mobsf_postgres_1"]
    # docker-bench repeats the id at the start of this description: the title drops it.
    assert findings["1.1.12"].title.startswith("Ensure auditing is configured for Dockerfiles and directories")
    assert findings["1.1.1"].description.startswith("For new installations, you should create a separate partition")
    assert findings["1.1.1"].details["remediation_impact"] == "None."
    assert "1.1.2" not in findings  # INFO
    assert "4.2" not in findings  # NOTE
    assert "2.3" not in findings  # PASS


def test_fingerprint_ignores_text_times_and_order() -> None:
    raw = (FIXTURES / "docker-bench-report-many-vulns.json").read_bytes()
    document = json.loads(raw)
    document["start"] = 1700000000
    document["end"] = 1700000100
    document["tests"][1]["results"][1]["desc"] = "reworded"
    document["tests"][1]["results"][1]["remediation"] = "reworded"
    changed = json.dumps(document, sort_keys=True, indent=1).encode()
    assert [f.fingerprint for f in registry.parse_bytes(raw)[1].findings] == [
        f.fingerprint for f in registry.parse_bytes(changed)[1].findings
    ]


def test_detect_rejects_other_documents() -> None:
    assert not parser.detect({"tests": []})
    assert not parser.detect([{"dockerbenchsecurity": "1.3.6", "tests": []}])
    assert not parser.detect({"dockerbenchsecurity": "1.3.6"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["tests"][1]["results"][1].pop("id"), "tests[1].results[1]: missing id"),
        (lambda d: d["tests"][1]["results"][1].update(result="MAYBE"), "unknown result 'MAYBE'"),
        (lambda d: d["tests"][1]["results"][1].update(items="a b"), "tests[1].results[1]: items is not a list"),
        (lambda d: d["tests"][1].update(results={}), "tests[1].results: expected a list, got an object"),
        (lambda d: d.update(tests=None), "tests: expected a list, got null"),
        (lambda d: d.update(start="noon"), "start: expected epoch seconds, got a string"),
        (lambda d: d["tests"].append(7), "tests[7]: expected an object, got a number"),
    ],
)
def test_malformed_logs(mutate: Any, message: str) -> None:
    document = copy.deepcopy(load("docker-bench-report-many-vulns.json"))
    mutate(document)
    with pytest.raises(ParseError, match=re.escape(message)):
        parser.parse(document)


def test_not_an_object() -> None:
    with pytest.raises(ParseError, match="not a docker-bench-security log"):
        parser.parse([])
