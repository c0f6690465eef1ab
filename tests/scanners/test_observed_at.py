"""Each parser returns the scanner's own time (``ParseResult.observed_at``) when its format carries one."""

from __future__ import annotations

import datetime as dt

import pytest

from scanners.moments import parse_moment
from scanners.registry import parse_bytes
from tests.conftest import fixture_bytes

UTC = dt.UTC


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        # Trivy CreatedAt, Go nanoseconds cut to microseconds
        ("trivy/trivy-golden_alpine-310_image.json", dt.datetime(2021, 8, 25, 12, 20, 30, tzinfo=UTC)),
        # Grype descriptor.timestamp
        ("grype/fix_available.json", dt.datetime(2024, 4, 10, 11, 5, 22, 636338, tzinfo=UTC)),
        # SARIF runs[].invocations[].endTimeUtc
        ("sarif/bash-report.sarif", dt.datetime(2021, 3, 8, 15, 39, 40, tzinfo=UTC)),
        # CycloneDX metadata.timestamp with an offset, as UTC
        ("cyclonedx/grype-golden_image_with-vulnerabilities.json", dt.datetime(2026, 3, 19, 15, 34, 26, tzinfo=UTC)),
        ("cyclonedx/log4j.json", dt.datetime(2022, 7, 22, 8, 45, 32, tzinfo=UTC)),
        # docker-bench "end" (Unix seconds)
        ("docker-bench/docker-bench-report-many-vulns.json", dt.datetime(2022, 8, 1, 16, 30, 9, tzinfo=UTC)),
        # OpenReports: the latest result timestamp of the reports in the list
        ("kyverno/openreports_list_format.json", dt.datetime(2025, 10, 27, 8, 28, 32, tzinfo=UTC)),
        # OpenReports without results: metadata.creationTimestamp
        ("kyverno/openreports_no_results.json", dt.datetime(2025, 10, 27, 8, 26, 27, tzinfo=UTC)),
        # policy-reporter's lone result: its creationTimestamp
        ("kyverno/policy-reporter_webhook_pass.json", dt.datetime(2023, 3, 23, 10, 4, 54, tzinfo=UTC)),
        # Gatekeeper status.auditTimestamp
        ("gatekeeper/constraint_ns_must_have_gk.yaml", dt.datetime(2019, 5, 11, 1, 46, 13, tzinfo=UTC)),
        # trivy-operator report.updateTimestamp
        ("trivy-operator/vulnerabilityreport_many.json", dt.datetime(2023, 3, 23, 16, 23, 1, tzinfo=UTC)),
        # Falco: the latest alert's time
        ("falco/falco_alerts_array.json", dt.datetime(2024, 6, 4, 14, 5, tzinfo=UTC)),
    ],
)
def test_the_scanners_own_time_is_read_from_the_report(fixture: str, expected: dt.datetime) -> None:
    _, result = parse_bytes(fixture_bytes(fixture))

    assert result.observed_at == expected
    assert result.observed_at.tzinfo is not None


@pytest.mark.parametrize(
    "fixture",
    [
        "grype/grype-golden_image.json",  # descriptor.timestamp is ""
        "kyverno/policy-reporter_webhook_fail.json",  # Go's zero time 0001-01-01
        "kube-bench/kube-bench-report-many-vuln.json",  # the format has no time
        "admission-review/denied_pod_kyverno.json",  # an AdmissionReview has none
        "trivy/scheme_2_many_vulns.json",  # an older Trivy without CreatedAt
    ],
)
def test_a_report_without_a_time_of_its_own_has_none(fixture: str) -> None:
    _, result = parse_bytes(fixture_bytes(fixture))

    assert result.observed_at is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-08-25T12:20:30.000000005Z", dt.datetime(2021, 8, 25, 12, 20, 30, tzinfo=UTC)),
        ("2026-03-19T11:34:26-0400", dt.datetime(2026, 3, 19, 15, 34, 26, tzinfo=UTC)),
        ({"seconds": 1680000000, "nanos": 0}, dt.datetime(2023, 3, 28, 10, 40, tzinfo=UTC)),
        ("2021-03-08T15:39:40", None),  # no time zone: not a moment
        ("0001-01-01T00:00:00Z", None),
        ("2021-13-45T00:00:00Z", None),
        (True, None),
        ("yesterday", None),
    ],
)
def test_timestamps_in_every_shape_the_tools_write(value: object, expected: dt.datetime | None) -> None:
    assert parse_moment(value) == expected
