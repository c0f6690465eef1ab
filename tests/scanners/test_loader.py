"""The loader's guards on real report bytes: duplicate keys and lone surrogate escapes are refused, precisely."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.reportgen import trivy_report
from scanners import loader
from scanners.base import ParseError
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REPORT = (FIXTURES / "trivy" / "trivy-golden_alpine-310_image.json").read_bytes()


def edited(old: bytes, new: bytes) -> bytes:
    """The real report with its first ``old`` replaced by ``new``."""
    assert old in REPORT
    return REPORT.replace(old, new, 1)


def test_a_duplicate_key_deep_in_a_report_is_refused_by_name() -> None:
    data = edited(b'"PkgName": "libcrypto1.1"', b'"PkgName": "libcrypto1.1", "Severity": "LOW", "PkgName": "openssl"')
    with pytest.raises(ParseError, match="duplicate key 'PkgName' in a JSON object"):
        load_document(data)


def test_the_first_key_given_twice_is_the_one_named() -> None:
    with pytest.raises(ParseError, match="duplicate key 'b' in a JSON object"):
        load_document(b'{"a": {"b": 1, "c": 2, "b": 3, "c": 4}}')


def test_a_key_repeated_through_an_escape_is_a_duplicate() -> None:
    with pytest.raises(ParseError, match="duplicate key 'a'"):
        load_document(b'{"\\u0061": 1, "a": 2}')


def test_a_duplicate_key_in_json_lines_is_refused() -> None:
    with pytest.raises(ParseError, match="duplicate key 'y'"):
        load_document(b'{"x": 1}\n{"y": 2, "y": 3}\n')


def test_the_same_key_in_sibling_objects_is_not_a_duplicate() -> None:
    assert load_document(b'[{"a": 1}, {"a": 2, "b": {"a": 3}}]') == [{"a": 1}, {"a": 2, "b": {"a": 3}}]


def test_a_lone_surrogate_is_refused_among_other_escapes() -> None:
    data = edited(b'"Title": "', b'"Title": "line\\nbreak \\u00e9 \\ud800')
    with pytest.raises(ParseError, match=r"lone surrogate \\ud800 in a string"):
        load_document(data)


def test_surrogate_pairs_escaped_backslashes_and_other_escapes_are_text() -> None:
    document = load_document(b'{"pair": "\\ud83d\\ude00", "literal": "\\\\ud800", "accent": "\\u00e9\\n"}')
    assert document == {"pair": "\U0001f600", "literal": "\\ud800", "accent": "\u00e9\n"}


def _operator_yaml_with_score(score: str) -> bytes:
    """The real trivy-operator VulnerabilityReport fixture as YAML (as `kubectl get -o yaml` gives it), one score replaced."""
    document = json.loads((FIXTURES / "trivy-operator" / "vulnerabilityreport_many.json").read_bytes())
    text = yaml.safe_dump(document, sort_keys=False)
    assert "score: 4.2" in text
    return text.replace("score: 4.2", f"score: {score}", 1).encode()


@pytest.mark.parametrize("digits", [41, 4301, 5000])
def test_a_yaml_integer_with_thousands_of_digits_is_refused_by_the_loader(digits: int) -> None:
    with pytest.raises(ParseError, match=f"number with {digits} digits is too long \\(line \\d+\\)"):
        load_document(_operator_yaml_with_score("9" * digits))


def test_ordinary_yaml_integers_still_load() -> None:
    document = load_document(_operator_yaml_with_score("7"))

    assert document["report"]["vulnerabilities"][0]["score"] == 7


def test_parse_exits_2_with_one_line_for_a_5000_digit_yaml_score(tmp_path: Path) -> None:
    report = tmp_path / "vulnerabilityreport.yaml"
    report.write_bytes(_operator_yaml_with_score("9" * 5000))

    result = subprocess.run(
        [sys.executable, "-m", "scanners", "parse", str(report)], cwd=FIXTURES.parents[1], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(report) in result.stderr and "number with 5000 digits is too long" in result.stderr


# --- the compiled decoder and the checks made around it -------------------------------------------------


def _slow(data: bytes):
    """The document as the standard library path loads it, every check a Python hook."""
    return loader._load_slowly(data)


def test_real_reports_load_exactly_as_the_standard_library_loads_them() -> None:
    reports = [p for p in FIXTURES.rglob("*.json") if p.stat().st_size < 2_000_000]
    assert len(reports) > 30
    for path in reports:
        data = path.read_bytes()
        assert json.dumps(load_document(data)) == json.dumps(_slow(data)), path


def test_a_duplicate_key_in_a_long_list_of_a_large_report_is_refused() -> None:
    report = trivy_report(1500)
    body = json.dumps(report).encode()
    ids = [v["VulnerabilityID"] for v in report["Results"][0]["Vulnerabilities"]]
    target = f'"VulnerabilityID": "{ids[-3]}"'.encode()
    data = body.replace(target, target + b', "Severity": "LOW", "VulnerabilityID": "CVE-0"', 1)

    with pytest.raises(ParseError, match="duplicate key 'VulnerabilityID' in a JSON object"):
        load_document(data)


def test_a_key_spelled_with_an_escaped_colon_is_a_duplicate_of_the_plain_one() -> None:
    with pytest.raises(ParseError, match="duplicate key 'a:b'"):
        load_document(b'{"a\\u003ab": 1, "a:b": 2}')


def test_escaped_colons_and_an_escaped_backslash_before_u003a_are_text() -> None:
    data = b'{"k\\u003A": "\\u003a", "v": "\\\\u003a", "w": "x:y"}'
    assert load_document(data) == {"k:": ":", "v": "\\u003a", "w": "x:y"} == json.loads(data)


@pytest.mark.parametrize("digits", [20, 25, 40])
def test_integers_up_to_the_digit_limit_stay_exact_integers(digits: int) -> None:
    number = int("7" * digits)
    assert load_document(f'{{"n": {number}, "m": -{number}}}'.encode()) == {"n": number, "m": -number}


def test_a_json_integer_one_digit_over_the_limit_is_refused() -> None:
    with pytest.raises(ParseError, match=f"number with {loader.MAX_INT_DIGITS + 1} digits is too long"):
        load_document(b'{"n": ' + b"8" * (loader.MAX_INT_DIGITS + 1) + b"}")


def test_a_float_of_more_than_400_characters_is_refused() -> None:
    with pytest.raises(ParseError, match="number with 402 characters is too long"):
        load_document(b'{"cvss": 7.' + b"1" * 400 + b"}")


def test_floats_are_the_same_numbers_the_standard_library_reads() -> None:
    rng = random.Random(7)
    numbers = [rng.uniform(-1e300, 1e300) for _ in range(500)] + [round(rng.uniform(0, 10), 1) for _ in range(500)]
    data = ("[" + ", ".join(f"{n:.17g}" for n in numbers) + "]").encode()
    assert load_document(data) == json.loads(data)
