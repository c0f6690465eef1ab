"""The shared normalisation helpers: bounds, cleaning and the words they map to."""

from __future__ import annotations

import hashlib
from typing import Any

from scanners.base import MAX_ID, clean_cvss, clean_json, clean_references, clean_text, normalise_cwes, normalise_severity
from scanners.fingerprint import make_fingerprint


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "x\x00y", "n": 1}
    for level in range(depth):
        node = {f"level{level}": node, "s": "s"}
    return node


def test_clean_json_cuts_below_twenty_levels_and_keeps_the_keys() -> None:
    cleaned = clean_json(nested(21))
    for level in range(20, 0, -1):
        assert cleaned["s"] == "s"
        cleaned = cleaned[f"level{level}"]
    assert cleaned == {"level0": None, "s": None}


def test_clean_json_strips_nul_bounds_strings_keys_and_lists() -> None:
    value = {"a\x00": "b\x00", "k" * 300: ["\x00"] * 300, "t": (1, 2.5, float("nan"), True, None), "o": object}
    cleaned = clean_json(value)
    assert list(cleaned) == ["a", "k" * MAX_ID, "t", "o"]
    assert cleaned["a"] == "b"
    assert cleaned["k" * MAX_ID] == [""] * 200
    assert cleaned["t"] == [1, 2.5, None, True, None]
    assert cleaned["o"] == "<class 'object'>"


def test_clean_text_keeps_clean_text_and_repairs_the_rest() -> None:
    text = "plain ascii"
    assert clean_text(text) is text
    assert clean_text("é\x00" * 10, 5) == "ééééé"
    assert clean_text("a\ud800b") == "a?b"
    assert clean_text(None) == ""
    assert clean_text(12.5) == "12.5"


def test_clean_cvss_rounds_scores_and_drops_the_rest() -> None:
    assert [clean_cvss(v) for v in (7.25, 9.87, 0.0, "5", 10)] == [7.2, 9.9, 0.0, 5.0, 10.0]
    assert [clean_cvss(v) for v in (float("nan"), -1.0, 10.5, True, None, "high")] == [None] * 6


def test_severity_words_in_any_case_and_spacing() -> None:
    words = ["HIGH", "High", "high", " Moderate ", "NEGLIGIBLE", "None", "", "severe", 3]
    assert [normalise_severity(w) for w in words] == ["high", "high", "high", "medium", "low", "info", "unknown", "unknown", "unknown"]


def test_cwe_ids_are_normalised_and_deduplicated() -> None:
    values = ["CWE-0079", "cwe-20", "79", "CWE-1234567", "NVD-CWE-Other", 416, "CWE-", "CWE-٣"]
    assert normalise_cwes(values) == ["CWE-79", "CWE-20", "CWE-123456", "CWE-416", "CWE-3"]


def test_references_are_stripped_cleaned_and_deduplicated() -> None:
    values = [" https://a ", "https://a", "", "  ", 5, "https://b\x00", None, "x" * 3000]
    assert clean_references(values) == ["https://a", "https://b", "x" * 2000]


def test_fingerprint_joins_stripped_parts_with_the_unit_separator() -> None:
    expected = hashlib.sha256(b"vuln\x1fdocker.io/library/alpine\x1f\x1fCVE-1\x1f").hexdigest()
    assert make_fingerprint("vuln", " docker.io/library/alpine ", None, "CVE-1", "") == expected
