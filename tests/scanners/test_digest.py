"""stable_digest: the same scan run twice has one digest; any change to a finding gives another."""

from __future__ import annotations

import json
from pathlib import Path

from scanners.digest import WINDOW, stable_digest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TRIVY = (FIXTURES / "trivy" / "trivy-golden_alpine-310_image.json").read_bytes()
CYCLONEDX = (FIXTURES / "cyclonedx" / "log4j.json").read_bytes()
GRYPE = (FIXTURES / "grype" / "grype-golden_image.json").read_bytes()


def test_a_trivy_rerun_with_a_new_time_and_report_id_has_the_same_digest() -> None:
    rerun = TRIVY.replace(b"2021-08-25T12:20:30.000000005Z", b"2026-11-27T09:00:00Z").replace(
        b"017b7d41-e09f-7000-80ea-000000000001", b"0193d6a4-1111-7000-8000-000000000002"
    )

    assert rerun != TRIVY
    assert stable_digest(rerun) == stable_digest(TRIVY)


def test_a_cyclonedx_bom_with_a_new_serial_number_and_timestamp_has_the_same_digest() -> None:
    document = json.loads(CYCLONEDX)
    document["serialNumber"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    document["metadata"]["timestamp"] = "2026-11-27T09:00:00Z"

    assert stable_digest(json.dumps(document).encode()) == stable_digest(json.dumps(json.loads(CYCLONEDX)).encode())


def test_a_grype_rerun_with_a_new_timestamp_has_the_same_digest() -> None:
    document = json.loads(GRYPE)
    document["descriptor"]["timestamp"] = "2026-11-27T09:00:00.123456789Z"

    assert stable_digest(json.dumps(document).encode()) == stable_digest(json.dumps(json.loads(GRYPE)).encode())


def test_a_changed_severity_changes_the_digest() -> None:
    document = json.loads(TRIVY)
    document["Results"][0]["Vulnerabilities"][0]["Severity"] = "LOW"

    assert stable_digest(json.dumps(document).encode()) != stable_digest(json.dumps(json.loads(TRIVY)).encode())


def test_a_key_name_quoted_inside_a_description_is_content_not_a_timestamp() -> None:
    document = json.loads(TRIVY)
    document["Results"][0]["Vulnerabilities"][0]["Description"] = 'log line {"CreatedAt": "2020-01-01"}'
    changed = json.loads(json.dumps(document))
    changed["Results"][0]["Vulnerabilities"][0]["Description"] = 'log line {"CreatedAt": "2030-01-01"}'

    assert stable_digest(json.dumps(changed).encode()) != stable_digest(json.dumps(document).encode())


def test_a_changed_tag_changes_the_digest() -> None:
    assert stable_digest(TRIVY.replace(b"alpine-310.tar.gz", b"alpine-311.tar.gz")) != stable_digest(TRIVY)


def test_only_plain_values_are_blanked_so_a_matching_digest_means_the_same_valid_json() -> None:
    plain = b'{"CreatedAt": "2026-11-27T09:00:00Z", "ReportID": 7, "Results": []}'
    other_plain = b'{"CreatedAt": "2026-11-28T10:30:00+01:00", "ReportID": 1.5e3, "Results": []}'
    escaped = b'{"CreatedAt": "\\u0032026", "ReportID": 7, "Results": []}'
    bad_escape = b'{"CreatedAt": "\\q", "ReportID": 7, "Results": []}'

    assert stable_digest(plain) == stable_digest(other_plain)
    assert stable_digest(escaped) != stable_digest(plain)
    assert stable_digest(bad_escape) != stable_digest(plain)


def padded(document: dict, section: list, copies: int) -> bytes:
    """The document with one list of findings repeated until it is several times WINDOW bytes long."""
    section.extend(json.loads(json.dumps(section[0])) for _ in range(copies))
    return json.dumps(document).encode()


def test_a_large_trivy_rerun_has_the_same_digest_its_run_keys_at_the_top() -> None:
    document = json.loads(TRIVY)
    large = padded(document, document["Results"][0]["Vulnerabilities"], 400)
    document["CreatedAt"], document["ReportID"] = "2026-11-27T09:00:00Z", "0193d6a4-1111-7000-8000-000000000002"

    assert len(large) > 3 * WINDOW
    assert stable_digest(json.dumps(document).encode()) == stable_digest(large)


def test_a_large_grype_rerun_has_the_same_digest_its_timestamp_at_the_end() -> None:
    document = json.loads(GRYPE)
    large = padded(document, document["matches"], 400)
    document["descriptor"]["timestamp"] = "2026-11-27T09:00:00.123456789Z"

    assert len(large) > 3 * WINDOW
    assert stable_digest(json.dumps(document).encode()) == stable_digest(large)


def test_a_run_key_in_the_middle_of_a_large_report_stays_in_the_digest() -> None:
    document = json.loads(TRIVY)
    vulnerabilities = document["Results"][0]["Vulnerabilities"]
    padded(document, vulnerabilities, 400)
    vulnerabilities[200]["CreatedAt"] = "2020-01-01"
    before = json.dumps(document).encode()
    vulnerabilities[200]["CreatedAt"] = "2030-01-01"

    assert stable_digest(json.dumps(document).encode()) != stable_digest(before)
