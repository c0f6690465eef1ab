"""A scan is applied in a number of queries that does not grow with its findings (issue 4: "a constant number
of queries per batch, never per finding"): the same for 20 findings as for 200, on a first import and on a
re-import that changes some of them."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import Finding, Status
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

# On SQLite (the embedded default) Django splits inserts to stay under its limit on parameters.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("require_postgres")]

ALPINE = json.loads(fixture_bytes("trivy/trivy-golden_alpine-310_image.json"))


def trivy(first: int, last: int, *, severity: str = "HIGH") -> bytes:
    """The alpine report with vulnerabilities first..last-1, each its own CVE id (all under BATCH)."""
    vulnerability = ALPINE["Results"][0]["Vulnerabilities"][0]
    result = {**ALPINE["Results"][0], "Vulnerabilities": []}
    for number in range(first, last):
        result["Vulnerabilities"].append({**vulnerability, "VulnerabilityID": f"CVE-2026-{number:05d}", "Severity": severity})
    return json.dumps({**ALPINE, "Results": [result]}).encode()


def queries_to_apply(body: bytes, image: str) -> int:
    report, _ = report_submit(data=body, team_slug="payments", image=image, enqueue_now=False, deduplicate=False)
    with CaptureQueriesContext(connection) as applied:
        report_process(report.pk)
    return len(applied.captured_queries)


def test_a_first_import_costs_the_same_queries_for_20_and_200_findings() -> None:
    TeamFactory(slug="payments")

    small = queries_to_apply(trivy(0, 20), "registry.example.com/payments/small:1.0")
    large = queries_to_apply(trivy(0, 200), "registry.example.com/payments/large:1.0")

    assert small == large
    assert Finding.objects.count() == 220


def test_a_reimport_that_fixes_adds_and_changes_findings_costs_the_same_for_20_and_200() -> None:
    TeamFactory(slug="payments")
    queries_to_apply(trivy(0, 20), "registry.example.com/payments/small:1.0")
    queries_to_apply(trivy(0, 200), "registry.example.com/payments/large:1.0")

    # A tenth gone, a tenth new, every remaining one changed (severity) and seen under a new tag.
    small = queries_to_apply(trivy(2, 22, severity="CRITICAL"), "registry.example.com/payments/small:1.1")
    large = queries_to_apply(trivy(20, 220, severity="CRITICAL"), "registry.example.com/payments/large:1.1")

    assert small == large
    assert Finding.objects.filter(status=Status.FIXED).count() == 22
    assert Finding.objects.filter(status=Status.OPEN, severity="critical").count() == 220
