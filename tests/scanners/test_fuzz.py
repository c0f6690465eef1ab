"""Property-based tests: mutated and random documents never escape as anything but ParseError,
and whatever parses yields well-formed, bounded findings."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanners import registry
from scanners.base import KINDS, MAX_TITLE, SEVERITIES, Finding, ParseError
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# The smallest fixture of each format that has findings keeps mutation fast.
SEEDS = {
    parser.name: min(
        (
            p
            for p in (FIXTURES / parser.name).iterdir()
            if p.suffix in (".json", ".yaml", ".sarif", ".jsonl") and p.stat().st_size < 200_000
        ),
        key=lambda p: (p.stat().st_size < 600, p.stat().st_size),
    )
    for parser in registry.PARSERS
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
replacements = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just(""), st.just("x" * 20_000), st.just(-1), st.just(11.5),
    st.just([]), st.just({}), st.just([None]), st.just("CRITICAL"), st.just("\ud800"), json_values,
)  # fmt: skip


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            out += paths(value, (*prefix, index))
    return out


def mutate(document: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    document = copy.deepcopy(document)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def check(findings: list) -> None:
    for finding in findings:
        assert finding.kind in KINDS
        assert finding.severity in SEVERITIES
        assert finding.cvss is None or 0 <= finding.cvss <= 10
        assert len(finding.title) <= MAX_TITLE
        assert "\x00" not in json.dumps(finding.to_dict())
        # A finding is a fixed point of cleaning, also when its parser passed ``cleaned=True``.
        fields = {field.name: copy.deepcopy(getattr(finding, field.name)) for field in dataclasses.fields(finding)}
        assert Finding(**fields).to_dict() == finding.to_dict()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_documents_only_raise_parse_error(name: str) -> None:
    parser = registry.get_parser(name)
    document = load_document(SEEDS[name].read_bytes())
    all_paths = paths(document)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(path=st.sampled_from(all_paths), value=replacements, delete=st.booleans())
    def run(path: tuple, value: Any, delete: bool) -> None:
        mutated = mutate(document, path, value, delete)
        try:
            result = parser.parse(mutated)
        except ParseError as exc:
            assert str(exc)
            return
        check(result.findings)

    run()


@settings(max_examples=200, deadline=None)
@given(document=json_values)
def test_random_documents_are_refused_or_parsed_by_every_parser(document: Any) -> None:
    for parser in registry.PARSERS:
        try:
            result = parser.parse(document)
        except ParseError:
            continue
        check(result.findings)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_loader(data: bytes) -> None:
    try:
        registry.parse_bytes(data)
    except ParseError as exc:
        assert str(exc)
