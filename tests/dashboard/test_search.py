"""The queue's text search looks in one column (``Finding.search_text``): it matches on each field it matched
before (rule id, title, package name), in any case, follows a changed title, and never across two fields."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from bench.reportgen import trivy_report
from dashboard.models import Finding
from dashboard.selectors.findings import FindingFilters, finding_list
from tests.dashboard.ingest_helpers import ingest
from tests.factories import FindingFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def found(user, q: str) -> list[str]:
    return sorted(finding.rule_id for finding in finding_list(user=user, filters=FindingFilters(q=q, status="")))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("CVE-2023-0286", ["CVE-2023-0286"]),  # rule id
        ("cve-2023", ["CVE-2023-0286"]),  # in any case
        ("X.400 address", ["CVE-2023-0286"]),  # title
        ("libcrypto3", ["CVE-2023-0286"]),  # package name
        ("shell in container", ["falco:terminal"]),
        ("zlib", ["CVE-2022-37434"]),
        ("1.2.13", []),  # not a searched field (the fixed version)
        ("libcrypto3\nCVE", []),  # never across two fields
    ],
)
def test_a_search_matches_each_searched_field(admin, q, expected) -> None:
    team = TeamFactory()
    FindingFactory(team=team, rule_id="CVE-2023-0286", title="X.400 address type confusion", package_name="libcrypto3")
    FindingFactory(team=team, rule_id="CVE-2022-37434", title="heap overflow in inflate", package_name="zlib", fixed_version="1.2.13")
    FindingFactory(team=team, rule_id="falco:terminal", title="Terminal shell in container", package_name="")

    assert found(admin, q) == expected


def test_a_title_a_later_report_changes_is_searched_as_changed(admin) -> None:
    TeamFactory(slug="payments")
    report = trivy_report(3, image="registry.example.com/payments/api")
    ingest(json.dumps(report).encode(), team="payments")
    vulnerability = report["Results"][0]["Vulnerabilities"][0]
    vulnerability["Title"] = "renamed by the scanner"
    ingest(json.dumps(report).encode(), team="payments")

    assert found(admin, "RENAMED BY THE") == [vulnerability["VulnerabilityID"]]


def test_postgresql_keeps_one_trigram_index_for_the_search(require_postgres) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", [Finding._meta.db_table, "%gin_trgm_ops%"]
        )
        names = sorted(name for (name,) in cursor.fetchall())

    assert names == ["finding_search_trgm_idx"]
