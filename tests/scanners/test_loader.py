"""The loader's guards on real report bytes: duplicate keys and lone surrogate escapes are refused, precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

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
