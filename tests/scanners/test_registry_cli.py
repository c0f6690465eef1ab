"""The registry and the `python -m scanners` command-line contract."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanners import registry
from scanners.base import KINDS, SEVERITIES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CONTRACT_FORMATS = [
    "trivy", "trivy-operator", "grype", "sarif", "cyclonedx", "kyverno",
    "gatekeeper", "admission-review", "falco", "kube-bench", "docker-bench",
]  # fmt: skip
ALL_SAMPLES = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml", ".yml", ".sarif", ".jsonl"))
#: Fixtures that are in their format but must be refused (written from documentation to show the refusal).
REFUSED = {"admission-review/bare_response_docs_example.json"}
#: What a validating webhook receives (requests, no decision yet): the webhook's input, not a report format.
WEBHOOK_REQUESTS = FIXTURES / "admission-review" / "requests"
SAMPLES = [p for p in ALL_SAMPLES if str(p.relative_to(FIXTURES)) not in REFUSED and p.parent != WEBHOOK_REQUESTS]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanners", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_formats_lists_exactly_the_contract_names_in_order() -> None:
    assert cli("formats").stdout.split() == CONTRACT_FORMATS
    assert registry.format_names() == CONTRACT_FORMATS


def test_scanners_never_imports_django_or_dashboard() -> None:
    offenders = []
    for path in sorted((ROOT / "scanners").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("django", "dashboard", "rest_framework", "celery", "vigil")
            ]
    assert offenders == []


@pytest.mark.parametrize("sample", SAMPLES, ids=[str(p.relative_to(FIXTURES)) for p in SAMPLES])
def test_every_fixture_is_detected_as_exactly_the_format_of_its_folder(sample: Path) -> None:
    detected = registry.detect(registry.load_document(sample.read_bytes()))

    assert detected.name == sample.parent.name


@pytest.mark.parametrize("sample", SAMPLES, ids=[str(p.relative_to(FIXTURES)) for p in SAMPLES])
def test_every_fixture_parses_into_well_formed_findings(sample: Path) -> None:
    _, result = registry.parse_bytes(sample.read_bytes())

    dicts = [finding.to_dict() for finding in result.findings]
    assert all(d["kind"] in KINDS and d["severity"] in SEVERITIES for d in dicts)
    assert all(d["source"] == sample.parent.name for d in dicts)
    assert all(len(d["fingerprint"]) == 64 and d["rule_id"] for d in dicts)
    assert all(d["cvss"] is None or 0 <= d["cvss"] <= 10 for d in dicts)
    assert all("\x00" not in json.dumps(d) for d in dicts)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_fixtures_meant_to_be_refused_raise_a_parse_error(name: str) -> None:
    with pytest.raises(registry.ParseError):
        registry.parse_bytes((FIXTURES / name).read_bytes())


def test_parse_prints_one_json_object_per_finding_with_the_contract_fields() -> None:
    result = cli("parse", str(FIXTURES / "trivy" / "trivy-golden_alpine-310_image.json"))

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert len(lines) == 4
    contract = {
        "kind",
        "source",
        "rule_id",
        "title",
        "severity",
        "fingerprint",
        "image",
        "package",
        "resource",
        "cvss",
        "cwe",
        "references",
        "occurred_at",
    }
    assert all(contract <= set(line) for line in lines)
    assert {line["image"]["repository"] for line in lines} == {"aquasecurity/trivy-test-images"}


def test_detect_prints_the_format_name() -> None:
    result = cli("detect", str(FIXTURES / "grype" / "many_vulns.json"))

    assert (result.returncode, result.stdout.strip()) == (0, "grype")


def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"SchemaVersion": 2, "Results": [')
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"hello": "world"}')

    results = [cli("parse", str(broken)), cli("detect", str(unknown)), cli("parse", str(tmp_path / "missing.json"))]

    assert [r.returncode for r in results] == [2, 2, 2]
    assert [len(r.stderr.strip().splitlines()) for r in results] == [1, 1, 1]
    assert results[0].stderr.startswith(f"{broken}: invalid JSON")
    assert results[1].stderr.startswith(f"{unknown}: cannot tell the format")
    assert "No such file" in results[2].stderr


def test_parse_with_a_declared_format_that_does_not_match_fails_clearly() -> None:
    result = cli("parse", str(FIXTURES / "trivy" / "trivy-golden_alpine-310_image.json"), "--format", "grype")

    assert result.returncode == 2
    assert "declared format 'grype' but the report looks like 'trivy'" in result.stderr


def test_every_parser_declares_its_format_facts_and_the_registry_collects_them() -> None:
    facts = {parser.name: (parser.stream, parser.events, parser.repeat_skips_parse) for parser in registry.PARSERS}
    assert {name for name, (_, events, _) in facts.items() if events} == registry.EVENT_FORMATS == {"falco", "admission-review"}
    assert {name for name, (_, _, skips) in facts.items() if not skips} == registry.ALWAYS_PARSED == {"falco", "admission-review"}
