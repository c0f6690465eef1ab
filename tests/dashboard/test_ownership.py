"""Ownership rules: matching, precedence, and how ingest, the token's team and ``team=`` combine."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.models import Finding, OwnershipRule, OwnerSource
from dashboard.selectors.ownership import RuleSet
from dashboard.services.ownership import resolve_owner, validate_pattern
from dashboard.services.tokens import token_create
from scanners.base import ImageRef, ResourceRef
from tests.conftest import fixture_bytes
from tests.factories import OwnershipRuleFactory, TeamFactory

pytestmark = pytest.mark.django_db

IMAGE = OwnershipRule.Kind.IMAGE
LABEL = OwnershipRule.Kind.LABEL
NAMESPACE = OwnershipRule.Kind.NAMESPACE
API = ImageRef(registry="registry.example.com", repository="payments/api", tag="1.4.1")
IN_PROD = ResourceRef(cluster="prod", namespace="payments-prod", kind="Deployment", name="api")
ALPINE = "trivy/trivy-golden_alpine-310_image.json"


def owner_slug(*, image=API, resource=IN_PROD, labels=None, report_team=None, named=False) -> str:
    owner = resolve_owner(report_team=report_team, image=image, resource=resource, labels=labels or {}, named=named)
    return owner.team.slug if owner.team else "unowned"


def test_an_exact_image_rule_beats_an_image_pattern_which_beats_labels_and_namespaces() -> None:
    OwnershipRuleFactory(team=TeamFactory(slug="by-namespace"), kind=NAMESPACE, pattern="payments-prod")
    OwnershipRuleFactory(team=TeamFactory(slug="by-label"), kind=LABEL, pattern="team=payments")
    OwnershipRuleFactory(team=TeamFactory(slug="by-pattern"), kind=IMAGE, pattern="registry.example.com/payments/*")
    OwnershipRuleFactory(team=TeamFactory(slug="by-image"), kind=IMAGE, pattern="registry.example.com/payments/api")

    assert owner_slug(labels={"team": "payments"}) == "by-image"
    assert owner_slug(image=ImageRef(registry="registry.example.com", repository="payments/worker"), labels={"team": "payments"}) == (
        "by-pattern"
    )
    assert owner_slug(image=ImageRef(registry="registry.example.com", repository="other/worker"), labels={"team": "payments"}) == (
        "by-label"
    )
    assert owner_slug(image=None, labels={}) == "by-namespace"


def test_an_exact_namespace_beats_a_namespace_pattern_and_the_longer_fixed_text_wins_between_patterns() -> None:
    OwnershipRuleFactory(team=TeamFactory(slug="wide"), kind=NAMESPACE, pattern="pay*")
    OwnershipRuleFactory(team=TeamFactory(slug="narrow"), kind=NAMESPACE, pattern="payments-*")
    OwnershipRuleFactory(team=TeamFactory(slug="exact"), kind=NAMESPACE, pattern="payments-prod")

    assert owner_slug(image=None) == "exact"
    assert owner_slug(image=None, resource=ResourceRef(namespace="payments-dev")) == "narrow"
    assert owner_slug(image=None, resource=ResourceRef(namespace="payroll")) == "wide"


def test_priority_breaks_a_tie_between_equally_specific_rules_and_then_the_older_rule_wins() -> None:
    OwnershipRuleFactory(team=TeamFactory(slug="older"), kind=LABEL, pattern="app=api")
    OwnershipRuleFactory(team=TeamFactory(slug="newer"), kind=LABEL, pattern="env=api")
    OwnershipRuleFactory(team=TeamFactory(slug="preferred"), kind=LABEL, pattern="org=api", priority=5)

    assert owner_slug(image=None, resource=None, labels={"app": "api", "env": "api"}) == "older"
    assert owner_slug(image=None, resource=None, labels={"app": "api", "env": "api", "org": "api"}) == "preferred"


def test_a_star_stays_inside_one_path_segment_of_an_image_and_a_double_star_crosses_segments() -> None:
    OwnershipRuleFactory(team=TeamFactory(slug="one-level"), kind=IMAGE, pattern="registry.example.com/payments/*")
    OwnershipRuleFactory(team=TeamFactory(slug="any-depth"), kind=IMAGE, pattern="registry.example.com/**")
    nested = ImageRef(registry="registry.example.com", repository="payments/api/migrations")

    assert owner_slug(resource=None) == "one-level"
    assert owner_slug(image=nested, resource=None) == "any-depth"
    assert owner_slug(image=ImageRef(registry="ghcr.io", repository="payments/api"), resource=None) == "unowned"


def test_the_oci_source_label_maps_an_image_to_the_team_of_its_repository() -> None:
    OwnershipRuleFactory(
        team=TeamFactory(slug="payments"), kind=LABEL, pattern="org.opencontainers.image.source=https://github.com/acme/payments-*"
    )
    labels = {"org.opencontainers.image.source": "https://github.com/acme/payments-api"}

    assert owner_slug(image=ImageRef(registry="ghcr.io", repository="acme/api"), resource=None, labels=labels) == "payments"


def test_a_named_team_beats_the_rules_and_the_report_team_is_the_fallback() -> None:
    OwnershipRuleFactory(team=TeamFactory(slug="rules"), kind=IMAGE, pattern="registry.example.com/payments/*")
    reporter = TeamFactory(slug="reporter")

    assert owner_slug(report_team=reporter, named=True) == "reporter"
    assert owner_slug(report_team=reporter, named=False) == "rules"
    assert owner_slug(image=ImageRef(registry="ghcr.io", repository="x/y"), resource=None, report_team=reporter) == "reporter"
    assert owner_slug(image=None, resource=None, report_team=None) == "unowned"


def test_the_reason_names_the_rule_and_what_it_matched() -> None:
    rule = OwnershipRuleFactory(team=TeamFactory(slug="payments"), kind=IMAGE, pattern="registry.example.com/payments/*")

    owner = resolve_owner(report_team=None, image=API, resource=None, labels={})

    assert owner.source == OwnerSource.RULE
    assert owner.rule == rule
    assert owner.reason == f"rule #{rule.pk}: image repository registry.example.com/payments/* matches registry.example.com/payments/api"


def test_a_rule_set_is_loaded_in_one_query_and_resolves_many_findings_without_more(django_assert_num_queries) -> None:
    OwnershipRuleFactory.create_batch(5, kind=NAMESPACE)

    with django_assert_num_queries(1):
        rules = RuleSet.load()
        owners = [resolve_owner(report_team=None, image=API, resource=IN_PROD, labels={}, rules=rules) for _ in range(50)]

    assert {owner.source for owner in owners} == {OwnerSource.NONE}


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        (IMAGE, "registry.example.com/payments/api:1.4.1"),
        (IMAGE, "registry.example.com/payments/api@sha256:" + "a" * 64),
        (IMAGE, "*/**"),
        (NAMESPACE, "Payments_Prod"),
        (NAMESPACE, "*"),
        (LABEL, "team"),
        (LABEL, "te*m=payments"),
        (LABEL, "team="),
        ("owner", "anything"),
        (IMAGE, "has space"),
    ],
)
def test_patterns_that_cannot_be_meant_are_refused_with_a_message(kind: str, pattern: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        validate_pattern(kind=kind, pattern=pattern)

    assert refused.value.code in {"invalid_pattern", "invalid_kind"}


def test_valid_patterns_are_kept_as_written_without_surrounding_spaces() -> None:
    assert validate_pattern(kind=IMAGE, pattern=" registry.example.com/payments/* ") == "registry.example.com/payments/*"
    assert validate_pattern(kind=NAMESPACE, pattern="payments-*") == "payments-*"
    assert validate_pattern(kind=LABEL, pattern="team=pay*") == "team=pay*"


# --- through ingest ---------------------------------------------------------------------------------


def post_report(token: str, query: str) -> dict:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.generic("POST", f"/api/v1/reports/{query}", fixture_bytes(ALPINE), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_rule_decides_the_owner_of_findings_a_team_token_reports_and_records_why() -> None:
    ci = TeamFactory(slug="platform")
    payments = TeamFactory(slug="payments")
    rule = OwnershipRuleFactory(team=payments, kind=IMAGE, pattern="registry.example.com/payments/*")
    _, token = token_create(team=ci, name="platform CI", all_teams=True)  # a platform scanner: organisation-wide ingest

    post_report(token, "?image=registry.example.com/payments/api:1.4.1")

    findings = Finding.objects.all()
    assert sorted({f.team.slug for f in findings}) == ["payments"]
    assert {(f.owner_source, f.owner_rule_id) for f in findings} == {(OwnerSource.RULE, rule.pk)}
    assert findings.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_report_that_names_its_team_keeps_it_whatever_the_rules_say() -> None:
    payments = TeamFactory(slug="payments")
    OwnershipRuleFactory(team=TeamFactory(slug="storefront"), kind=IMAGE, pattern="registry.example.com/payments/*")
    _, token = token_create(team=payments, name="payments CI")

    post_report(token, "?image=registry.example.com/payments/api:1.4.1&team=payments")

    assert set(Finding.objects.values_list("team__slug", "owner_source", "owner_reason")) == {
        ("payments", OwnerSource.NAMED, "named by the report (team=payments)")
    }


@pytest.mark.django_db(transaction=True)
def test_without_a_matching_rule_findings_belong_to_the_token_team() -> None:
    payments = TeamFactory(slug="payments")
    OwnershipRuleFactory(team=TeamFactory(slug="storefront"), kind=IMAGE, pattern="registry.example.com/storefront/*")
    _, token = token_create(team=payments, name="payments CI")

    post_report(token, "?image=registry.example.com/payments/api:1.4.1")

    assert set(Finding.objects.values_list("team__slug", "owner_source")) == {("payments", OwnerSource.REPORT)}
