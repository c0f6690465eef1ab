"""Ownership pages: why a finding or an image has its owner, the rules, the unowned queue."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import Finding, OwnershipRule, OwnerSource, Role
from tests.factories import FindingFactory, ImageFactory, MembershipFactory, OwnershipRuleFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def payments():
    return TeamFactory(slug="payments", name="Payments")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_finding_page_of_ownership_says_which_rule_owns_it_and_why(payments, django_assert_max_num_queries) -> None:
    rule = OwnershipRuleFactory(team=payments, kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/payments/*")
    OwnershipRuleFactory(team=TeamFactory(slug="platform"), kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/**")
    image = ImageFactory(repository="payments/api", team=payments)
    reason = f"rule #{rule.pk}: image repository registry.example.com/payments/* matches registry.example.com/payments/api"
    finding = FindingFactory(team=payments, image=image, owner_source=OwnerSource.RULE, owner_rule=rule, owner_reason=reason)
    client = logged_in(MembershipFactory(team=payments, role=Role.MEMBER).user)

    with django_assert_max_num_queries(6):
        response = client.get(f"/ownership/findings/{finding.pk}/")

    why = response.context["why"]
    assert response.status_code == 200
    assert (why.team, why.source_label, why.reason, why.rule) == (payments, "an ownership rule", reason, rule)
    assert [(compiled.rule.pattern, matched) for compiled, matched in why.matches] == [
        ("registry.example.com/payments/*", "registry.example.com/payments/api"),
        ("registry.example.com/**", "registry.example.com/payments/api"),
    ]
    assert reason in response.content.decode()


def test_the_image_page_of_ownership_explains_an_image_without_rules(payments) -> None:
    image = ImageFactory(repository="payments/api", team=payments, labels={"team": "payments"})
    client = logged_in(MembershipFactory(team=payments).user)

    why = client.get(f"/ownership/images/{image.pk}/").context["why"]

    assert (why.team, why.source, why.reason, why.matches) == (
        payments,
        OwnerSource.REPORT,
        "the team of the report that first carried this image",
        [],
    )
    assert why.labels == {"team": "payments"}


def test_people_outside_the_team_get_404_on_its_ownership_pages(payments) -> None:
    finding = FindingFactory(team=payments)
    client = logged_in(MembershipFactory(team=TeamFactory(slug="storefront")).user)

    assert client.get(f"/ownership/findings/{finding.pk}/").status_code == 404
    assert client.get(f"/ownership/images/{finding.image_id}/").status_code == 404


def test_the_rules_page_lists_the_rules_of_the_teams_you_read_with_open_findings_owned(payments, django_assert_max_num_queries) -> None:
    rule = OwnershipRuleFactory(team=payments, kind=OwnershipRule.Kind.NAMESPACE, pattern="payments-*")
    OwnershipRuleFactory(team=TeamFactory(slug="storefront"), kind=OwnershipRule.Kind.NAMESPACE, pattern="storefront-*")
    FindingFactory.create_batch(2, team=payments, owner_rule=rule, owner_source=OwnerSource.RULE)
    client = logged_in(MembershipFactory(team=payments).user)

    with django_assert_max_num_queries(6):
        response = client.get("/ownership/")

    assert [(r.pattern, r.owned) for r in response.context["rules"]] == [("payments-*", 2)]
    assert response.context["can_manage"] is False


def test_an_administrator_adds_a_rule_and_the_findings_move_after_commit(payments, django_capture_on_commit_callbacks) -> None:
    finding = FindingFactory(team=None, image=ImageFactory(repository="payments/api", team=None))
    client = logged_in(UserFactory(is_staff=True))

    with django_capture_on_commit_callbacks(execute=True):
        with_a_rule = client.post(
            "/ownership/rules/new/", {"kind": "image", "pattern": "registry.example.com/payments/*", "team": "payments", "priority": "0"}
        )

    assert (with_a_rule.status_code, with_a_rule["Location"]) == (302, "/ownership/")
    assert Finding.objects.get(pk=finding.pk).team == payments


def test_a_bad_pattern_is_shown_back_with_the_reason(payments) -> None:
    client = logged_in(UserFactory(is_staff=True))

    form = {"kind": "image", "pattern": "registry.example.com/payments/api:1.0", "team": "payments", "priority": "0"}

    response = client.post("/ownership/rules/new/", form)

    assert response.status_code == 400
    assert response.context["form"].errors["pattern"] == [
        "an image pattern names a repository, without tag or digest (registry.example.com/payments/*)"
    ]


def test_the_unowned_queue_groups_open_unowned_findings_by_image_and_namespace(django_assert_max_num_queries) -> None:
    image = ImageFactory(repository="orphan/app", team=None)
    FindingFactory.create_batch(3, team=None, image=image)
    FindingFactory(team=None, image=None, scope_key="admission|kyverno|x", resource_namespace="legacy")
    FindingFactory(team=None, image=None, scope_key="scan|kube-bench|x")
    client = logged_in(UserFactory(is_staff=True))

    with django_assert_max_num_queries(8):
        queue = client.get("/ownership/unowned/").context["queue"]

    assert queue["total"] == 5
    assert [(row["name"], row["n"]) for row in queue["images"]] == [("registry.example.com/orphan/app", 3)]
    assert [(row["resource_namespace"], row["n"]) for row in queue["namespaces"]] == [("legacy", 1)]
    assert queue["other"] == 1


def test_an_administrator_sets_an_owner_by_hand_from_the_explanation_page(payments) -> None:
    finding = FindingFactory(team=None)
    client = logged_in(UserFactory(username="root", is_staff=True))

    response = client.post(f"/ownership/findings/{finding.pk}/owner/", {"team": "payments", "reason": "they run it"})

    finding.refresh_from_db()
    assert response.status_code == 302
    assert (finding.team, finding.owner_source, finding.owner_reason) == (payments, OwnerSource.MANUAL, "set by root: they run it")
