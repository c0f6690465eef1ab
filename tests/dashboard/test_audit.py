"""The append-only audit log: who, when, from where, what and why; readable by administrators and managers."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from dashboard.models import AuditEvent, AuditLogIsAppendOnly, Role
from dashboard.services.audit import audit_record, client_ip
from dashboard.services.teams import membership_remove, membership_set
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def record():
    return audit_record(
        action=AuditEvent.Action.RISK_ACCEPTED, actor=UserFactory(username="carol"), ip="192.0.2.1", summary="accepted", reason="r"
    )


def test_a_record_cannot_be_changed_or_deleted_through_the_orm(record) -> None:
    record.summary = "rewritten"

    with pytest.raises(AuditLogIsAppendOnly):
        record.save()
    with pytest.raises(AuditLogIsAppendOnly):
        record.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=record.pk).update(summary="rewritten")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=record.pk).summary == "accepted"


def test_the_database_refuses_updates_and_deletes_too(record, require_postgres) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE dashboard_auditevent SET summary = 'rewritten' WHERE id = %s", [record.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM dashboard_auditevent WHERE id = %s", [record.pk])
    assert AuditEvent.objects.get(pk=record.pk).summary == "accepted"


def test_deleting_the_person_keeps_their_records(record) -> None:
    UserFactory._meta.model.objects.filter(username="carol").delete()

    kept = AuditEvent.objects.get(pk=record.pk)
    assert (kept.actor_label, kept.ip, kept.reason) == ("carol", "192.0.2.1", "r")


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="finding.deleted", summary="x")


@pytest.mark.parametrize(
    ("meta", "proxies", "expected"),
    [
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, 0, "10.0.0.2"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}, 1, "203.0.113.7"),
        ({"REMOTE_ADDR": "not an address"}, 0, None),
    ],
)
def test_the_client_address_trusts_only_our_own_proxies(settings, meta: dict, proxies: int, expected: str | None) -> None:
    settings.VIGIL_TRUSTED_PROXIES = proxies

    assert client_ip(meta) == expected


def test_membership_changes_are_audited_with_before_and_after() -> None:
    team, user, admin = TeamFactory(slug="payments"), UserFactory(username="dave"), UserFactory(username="root", is_staff=True)

    membership_set(user=user, team=team, role=Role.MEMBER, by=admin, ip="192.0.2.9")
    membership_set(user=user, team=team, role=Role.MEMBER, by=admin)
    membership_set(user=user, team=team, role=Role.MANAGER, can_triage=True, by=admin, reason="covering for Erin")
    membership_remove(user=user, team=team, by=admin)

    assert list(AuditEvent.objects.order_by("id").values_list("action", "actor_label", "summary", "reason")) == [
        ("membership.set", "root", "dave is member of payments", ""),
        ("membership.set", "root", "dave is manager of payments with the triage grant (was member)", "covering for Erin"),
        ("membership.removed", "root", "dave removed from payments", ""),
    ]


@pytest.fixture
def log():
    payments, storefront = TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    audit_record(action=AuditEvent.Action.STATUS_CHANGED, team=payments, summary="payments record")
    audit_record(action=AuditEvent.Action.TOKEN_CREATED, team=storefront, summary="storefront record")
    audit_record(action=AuditEvent.Action.RULE_CREATED, summary="global record")
    return payments, storefront


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def summaries(response) -> list[str]:
    return [event.summary for event in response.context["page"].object_list]


def test_administrators_read_every_record(log, django_assert_max_num_queries) -> None:
    client = page_for(UserFactory(is_staff=True))

    with django_assert_max_num_queries(6):
        response = client.get("/audit/")

    assert summaries(response) == ["global record", "storefront record", "payments record"]


def test_managers_read_the_records_of_the_teams_granted_to_them(log, django_assert_max_num_queries) -> None:
    payments, _ = log
    client = page_for(MembershipFactory(team=payments, role=Role.MANAGER).user)

    with django_assert_max_num_queries(8):
        response = client.get("/audit/")

    assert summaries(response) == ["payments record"]


def test_the_log_filters_by_action_and_keeps_filters_in_the_url(log) -> None:
    client = page_for(UserFactory(is_staff=True))

    response = client.get("/audit/?action=token.created")

    assert summaries(response) == ["storefront record"]
    assert response.context["query"] == "action=token.created"


def test_champions_and_anonymous_people_cannot_read_the_log(log) -> None:
    payments, _ = log

    assert page_for(MembershipFactory(team=payments, role=Role.CHAMPION).user).get("/audit/").status_code == 403
    assert Client().get("/audit/")["Location"] == "/login/?next=/audit/"
