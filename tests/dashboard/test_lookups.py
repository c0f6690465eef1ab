"""field__any: the same rows as field__in (one array parameter on PostgreSQL in CI, IN on SQLite)."""

from __future__ import annotations

import pytest

from dashboard.db.any_lookup import array_literal
from dashboard.models import Finding, FindingOccurrence
from tests.factories import FindingFactory, FindingOccurrenceFactory

pytestmark = pytest.mark.django_db

AWKWARD = ["comma, here", "{braces}", "NULL", '"quoted"', "back\\slash", "it's", "", " spaced ", "ü€😀", '\\"both']


def test_any_matches_awkward_text_exactly_like_in() -> None:
    findings = [FindingFactory(rule_id=text) for text in AWKWARD]
    FindingFactory(rule_id="not asked for")

    by_any = set(Finding.objects.filter(rule_id__any=AWKWARD).values_list("pk", flat=True))

    assert by_any == {finding.pk for finding in findings}
    assert by_any == set(Finding.objects.filter(rule_id__in=AWKWARD).values_list("pk", flat=True))


def test_any_on_primary_and_foreign_keys() -> None:
    first, second, other = FindingFactory(), FindingFactory(), FindingFactory()
    FindingOccurrenceFactory(finding=first, tag="1.0")
    FindingOccurrenceFactory(finding=other, tag="1.0")

    assert set(Finding.objects.filter(pk__any=[first.pk, second.pk]).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert list(FindingOccurrence.objects.filter(finding_id__any=[first.pk, second.pk]).values_list("finding_id", flat=True)) == [first.pk]


def test_any_of_nothing_matches_nothing_and_ignores_none() -> None:
    finding = FindingFactory()

    assert not Finding.objects.filter(pk__any=[]).exists()
    assert list(Finding.objects.filter(pk__any=[None, finding.pk]).values_list("pk", flat=True)) == [finding.pk]


def test_any_refuses_a_single_string() -> None:
    with pytest.raises(TypeError, match="list of values"):
        Finding.objects.filter(rule_id__any="CVE-2026-0001")


def test_array_literal_quotes_every_element() -> None:
    assert array_literal([1, None, "a,b", 'say "hi"', "back\\slash"]) == '{"1","a,b","say \\"hi\\"","back\\\\slash"}'
    assert array_literal([]) == "{}"
