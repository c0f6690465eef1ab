"""Changing rules re-assigns the findings they affect (in the background, idempotently) and is audited."""

from __future__ import annotations

import pytest

from dashboard import tasks
from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Finding, FindingEvent, OwnershipRule, OwnerSource
from dashboard.services.ownership_rules import REASSIGN_TASK, finding_set_owner, ownership_reassign, rule_create, rule_delete, rule_update
from tests.factories import FindingFactory, ImageFactory, OwnershipRuleFactory, ReportFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


IMAGE = OwnershipRule.Kind.IMAGE
NAMESPACE = OwnershipRule.Kind.NAMESPACE


@pytest.fixture
def world():
    platform, payments, storefront = TeamFactory(slug="platform"), TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    report = ReportFactory(team=platform)
    api = ImageFactory(repository="payments/api", team=platform)
    web = ImageFactory(repository="storefront/web", team=platform)
    owned_by_report = dict(team=platform, owner_source=OwnerSource.REPORT, last_report=report)
    return {
        "platform": platform,
        "payments": payments,
        "storefront": storefront,
        "admin": UserFactory(username="root", is_staff=True),
        "api": FindingFactory.create_batch(3, image=api, **owned_by_report),
        "web": FindingFactory.create_batch(2, image=web, **owned_by_report),
        "pod": FindingFactory(
            image=None, scope_key="admission|kyverno|resource:prod/payments-prod", resource_namespace="payments-prod", **owned_by_report
        ),
    }


def teams_of(findings) -> list[str]:
    return [Finding.objects.get(pk=f.pk).team.slug for f in findings]


def test_a_new_rule_re_assigns_the_findings_it_matches_after_commit(world, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rule_create(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"], ip="192.0.2.7")

    assert len(callbacks) == 1
    assert teams_of(world["api"]) == ["payments", "payments", "payments"]
    assert teams_of(world["web"]) == ["platform", "platform"]
    assert teams_of([world["pod"]]) == ["platform"]
    assert FindingEvent.objects.filter(type=FindingEvent.Type.OWNER).count() == 3


def test_re_assignment_is_idempotent(world) -> None:
    rule = OwnershipRuleFactory(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*")

    first = ownership_reassign(rule_id=rule.pk)
    second = ownership_reassign(rule_id=rule.pk)

    assert (first, second) == (3, 0)
    assert FindingEvent.objects.filter(type=FindingEvent.Type.OWNER).count() == 3
    assert AuditEvent.objects.filter(action=AuditEvent.Action.OWNERSHIP_REASSIGNED).count() == 1


def test_changing_a_rule_moves_what_it_owned_and_what_it_now_matches(world, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rule = rule_create(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        rule_update(
            rule=rule, team=world["storefront"], kind=IMAGE, pattern="registry.example.com/storefront/*", priority=0, by=world["admin"]
        )

    assert teams_of(world["api"]) == ["platform", "platform", "platform"]
    assert teams_of(world["web"]) == ["storefront", "storefront"]


def test_deleting_a_rule_hands_its_findings_back_to_their_report_team(world, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rule = rule_create(team=world["payments"], kind=NAMESPACE, pattern="payments-*", by=world["admin"])
    assert teams_of([world["pod"]]) == ["payments"]

    with django_capture_on_commit_callbacks(execute=True):
        rule_delete(rule=rule, by=world["admin"], reason="namespace moved")

    pod = Finding.objects.get(pk=world["pod"].pk)
    assert (pod.team.slug, pod.owner_source, pod.owner_rule_id) == ("platform", OwnerSource.REPORT, None)


def test_an_owner_set_by_hand_sticks_when_rules_change_and_can_be_handed_back(world, django_capture_on_commit_callbacks) -> None:
    pinned = world["api"][0]
    finding_set_owner(finding=pinned, team=world["storefront"], by=world["admin"], reason="they run it")

    with django_capture_on_commit_callbacks(execute=True):
        rule_create(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"])

    assert teams_of(world["api"]) == ["storefront", "payments", "payments"]
    released = finding_set_owner(finding=pinned, team=None, by=world["admin"])
    assert (released.team.slug, released.owner_source) == ("payments", OwnerSource.RULE)


def test_a_report_that_named_its_team_is_not_moved_by_rules(world, django_capture_on_commit_callbacks) -> None:
    named = FindingFactory(image=world["api"][0].image, team=world["platform"], owner_source=OwnerSource.NAMED)

    with django_capture_on_commit_callbacks(execute=True):
        rule_create(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"])

    assert teams_of([named]) == ["platform"]


def test_rule_changes_are_audited_with_who_where_what_and_why(world, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rule = rule_create(
            team=world["payments"],
            kind=IMAGE,
            pattern="registry.example.com/payments/*",
            note="payments owns its images",
            by=world["admin"],
            ip="192.0.2.7",
        )
    with django_capture_on_commit_callbacks(execute=True):
        rule_delete(rule=rule, by=world["admin"], ip="192.0.2.8", reason="replaced")

    records = list(AuditEvent.objects.order_by("id").values_list("action", "actor_label", "ip", "team_slug", "reason"))
    assert records == [
        ("rule.created", "root", "192.0.2.7", "payments", "payments owns its images"),
        ("ownership.reassigned", "Vigil", None, "payments", ""),
        ("rule.deleted", "root", "192.0.2.8", "payments", "replaced"),
        ("ownership.reassigned", "Vigil", None, "", ""),
    ]


def test_two_rules_for_the_same_pattern_are_refused(world) -> None:
    rule_create(team=world["payments"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"])

    with pytest.raises(ApplicationError) as refused:
        rule_create(team=world["storefront"], kind=IMAGE, pattern="registry.example.com/payments/*", by=world["admin"])

    assert refused.value.status == 409


def test_the_celery_task_is_named_and_takes_the_rule_id() -> None:
    assert tasks.reassign_ownership.name == REASSIGN_TASK == "vigil.ownership.reassign"
