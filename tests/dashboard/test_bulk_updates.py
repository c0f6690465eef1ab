"""bulk_update_rows writes what save() would, one statement per batch (SQLite here, PostgreSQL in CI)."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.db.update_values import bulk_update_rows
from dashboard.models import Finding
from tests.factories import FindingFactory

pytestmark = pytest.mark.django_db

FIELDS = ["title", "cvss", "details", "cwe", "due_date", "last_seen", "image", "fixed_at", "occurrences"]


def test_every_kind_of_value_is_written_as_save_would_write_it(django_assert_num_queries) -> None:
    first, second = FindingFactory.create_batch(2, cvss=5.0, details={"old": True})
    untouched = FindingFactory(title="untouched")
    seen = dt.datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=dt.UTC)
    first.title = 'it\'s 100% "quoted" ; DROP TABLE x'
    first.cvss = None
    first.details = {"target": "alpine 3.19", "fixed_versions": ["1.2.3"], "nested": {"n": 1.5}}
    first.cwe = ["CWE-79", "CWE-89"]
    first.due_date = dt.date(2026, 12, 4)
    first.last_seen = seen
    first.image = None
    first.fixed_at = seen
    first.occurrences = 7
    second.title = "second"
    second.cvss = 9.8

    with django_assert_num_queries(1):
        updated = bulk_update_rows(Finding, [first, second], FIELDS)

    assert updated == 2
    first.refresh_from_db()
    second.refresh_from_db()
    untouched.refresh_from_db()
    assert first.title == 'it\'s 100% "quoted" ; DROP TABLE x'
    assert first.cvss is None
    assert first.details == {"target": "alpine 3.19", "fixed_versions": ["1.2.3"], "nested": {"n": 1.5}}
    assert first.cwe == ["CWE-79", "CWE-89"]
    assert first.due_date == dt.date(2026, 12, 4)
    assert first.last_seen == seen
    assert first.image_id is None
    assert first.fixed_at == seen
    assert first.occurrences == 7
    assert (second.title, second.cvss, second.details) == ("second", 9.8, {"old": True})
    assert untouched.title == "untouched"


def test_one_statement_per_batch(django_assert_num_queries) -> None:
    findings = FindingFactory.create_batch(5)
    for number, finding in enumerate(findings):
        finding.occurrences = 10 + number

    with django_assert_num_queries(3):
        updated = bulk_update_rows(Finding, findings, ["occurrences"], batch_size=2)

    assert updated == 5
    assert list(Finding.objects.order_by("id").values_list("occurrences", flat=True)) == [10, 11, 12, 13, 14]


def test_nothing_to_write_sends_nothing(django_assert_num_queries) -> None:
    finding = FindingFactory()

    with django_assert_num_queries(0):
        assert bulk_update_rows(Finding, [], ["title"]) == 0
        assert bulk_update_rows(Finding, [finding], []) == 0
