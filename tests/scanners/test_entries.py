"""Pending entries (scanners/entries.py): Trivy and Grype read and check every entry at parse time, and normalise
only the entries whose digest is not known."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from scanners import entries, registry
from scanners.base import ParseError
from scanners.loader import load_document

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HASHED = [
    "trivy/trivy-golden_alpine-310_image.json",
    "trivy/scheme_2_many_vulns.json",
    "trivy/kubernetes.json",
    "trivy/misconfigurations_and_secrets.json",
    "grype/grype-golden_image.json",
    "grype/many_vulns.json",
    "grype/same_cve_different_paths.json",
]


def load(name: str) -> Any:
    return load_document((FIXTURES / name).read_bytes())


def pending_of(document: Any) -> entries.Pending:
    _, result = registry.parse_document(document)
    assert result.pending is not None
    return result.pending


def every_digest(pending: entries.Pending) -> dict[str, str]:
    """Every entry's digest with the fingerprint its finding has (as a stored finding would)."""
    return {entry.digest: finding.fingerprint for entry in pending.entries if entry.digest and (finding := entry.build()) is not None}


@pytest.mark.parametrize("name", HASHED)
def test_resolving_nothing_known_is_the_full_parse(name: str) -> None:
    document = load(name)
    _, result = registry.parse_document(document)

    resolved = pending_of(document).resolve({})

    assert [finding.to_dict() for finding in resolved.findings] == [finding.to_dict() for finding in result.findings]
    assert resolved.unchanged == []
    assert result.pending is None  # once read, the findings are a plain list


@pytest.mark.parametrize("name", HASHED)
def test_an_entry_known_by_its_digest_is_not_normalised(name: str) -> None:
    document = load(name)
    known = every_digest(pending_of(document))

    resolved = pending_of(document).resolve(known)

    assert [fingerprint for _, fingerprint in resolved.unchanged] == list(known.values())
    assert all(finding.entry_hash == "" for finding in resolved.findings)  # what is left has no digest of its own


def test_a_digest_ignores_the_tag_and_the_report_time_but_not_the_content() -> None:
    document = load("trivy/trivy-golden_alpine-310_image.json")
    retagged = copy.deepcopy(document)
    retagged["CreatedAt"] = "2030-01-01T00:00:00Z"
    retagged["Metadata"]["RepoTags"] = ["ghcr.io/aquasecurity/trivy-test-images:alpine-311"]
    retagged["Results"][0]["Target"] = "ghcr.io/aquasecurity/trivy-test-images:alpine-311 (alpine 3.10.2)"
    changed = copy.deepcopy(document)
    changed["Results"][0]["Vulnerabilities"][0]["Severity"] = "LOW"

    digests = [entry.digest for entry in pending_of(document).entries]

    assert [entry.digest for entry in pending_of(retagged).entries] == digests
    assert [entry.digest for entry in pending_of(changed).entries][1:] == digests[1:]
    assert pending_of(changed).entries[0].digest != digests[0]
    assert len(set(digests)) == len(digests)


def test_a_digest_changes_with_the_code_that_reads_the_entry(monkeypatch) -> None:
    document = load("grype/grype-golden_image.json")
    digests = [entry.digest for entry in pending_of(document).entries]
    monkeypatch.setattr(entries, "CODE_VERSION", b"another parser")

    assert not {entry.digest for entry in pending_of(document).entries} & set(digests)


def test_a_known_entry_that_another_entry_of_the_report_names_is_normalised_with_it() -> None:
    document = load("trivy/trivy-golden_alpine-310_image.json")
    known = every_digest(pending_of(document))
    twice = copy.deepcopy(document)
    twice["Results"].append({**twice["Results"][0], "Target": "another place"})
    _, full = registry.parse_document(copy.deepcopy(twice))

    resolved = pending_of(twice).resolve(known)

    assert resolved.unchanged == []
    assert [finding.to_dict() for finding in resolved.findings] == [finding.to_dict() for finding in full.findings]
    assert all(finding.details["also_seen"] == [{"target": "another place"}] for finding in resolved.findings)


def test_every_entry_is_checked_at_parse_time_known_or_not() -> None:
    document = load("trivy/trivy-golden_alpine-310_image.json")
    document["Results"][0]["Vulnerabilities"][2]["CweIDs"] = "CWE-79"

    with pytest.raises(ParseError, match=r"^Results\[0\]\.Vulnerabilities\[2\]\.CweIDs: expected a list, got a string$"):
        registry.parse_document(document)
