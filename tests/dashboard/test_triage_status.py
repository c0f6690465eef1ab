"""Status transitions, assignment, comments and undo: every change an event with who and why."""

from __future__ import annotations

import pytest

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, Finding, FindingEvent, Role, Status
from dashboard.services import finding_updates, triage, triage_undo
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


@pytest.fixture
def champion(team):
    return MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user


@pytest.fixture
def member(team):
    return MembershipFactory(team=team, role=Role.MEMBER, user=UserFactory(username="mo")).user


@pytest.fixture
def manager(team):
    return MembershipFactory(team=team, role=Role.MANAGER, user=UserFactory(username="meg")).user


def test_a_status_change_is_an_event_with_actor_reason_and_both_statuses(team, champion) -> None:
    finding = FindingFactory(team=team)

    result = triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.FALSE_POSITIVE, reason="not reachable: test fixture")

    finding.refresh_from_db()
    event = FindingEvent.objects.get(finding=finding)
    assert result.changed == [finding.pk]
    assert finding.status == Status.FALSE_POSITIVE
    assert (event.type, event.from_status, event.to_status, event.actor, event.reason) == (
        "status",
        "open",
        "false_positive",
        champion,
        "not reachable: test fixture",
    )
    assert event.batch == result.batch


def test_closing_a_finding_needs_a_reason(team, champion) -> None:
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.FALSE_POSITIVE, reason="  ")

    assert error.value.code == "reason_required"
    assert FindingEvent.objects.count() == 0


def test_triaged_and_in_progress_need_no_reason(team, member) -> None:
    finding = FindingFactory(team=team)

    triage.findings_set_status(ids=[finding.pk], by=member, status=Status.TRIAGED)
    triage.findings_set_status(ids=[finding.pk], by=member, status=Status.IN_PROGRESS)

    assert list(FindingEvent.objects.order_by("id").values_list("from_status", "to_status")) == [
        ("open", "triaged"),
        ("triaged", "in_progress"),
    ]


def test_transitions_outside_the_product_rules_are_skipped_with_the_reason(team, champion) -> None:
    fixed = FindingFactory(team=team, status=Status.FIXED)
    duplicate = FindingFactory(team=team, status=Status.DUPLICATE)

    result = triage.findings_set_status(ids=[fixed.pk, duplicate.pk], by=champion, status=Status.TRIAGED)

    assert result.changed == []
    assert result.skipped == {"a duplicate finding cannot become triaged": 1, "a fixed finding cannot become triaged": 1}


def test_a_manager_reads_but_may_not_triage(team, manager) -> None:
    finding = FindingFactory(team=team)

    result = triage.findings_set_status(ids=[finding.pk], by=manager, status=Status.TRIAGED)

    assert result.skipped == {"you may not triage this team's findings": 1}
    assert Finding.objects.get(pk=finding.pk).status == Status.OPEN


def test_a_champion_may_not_triage_another_teams_findings(champion) -> None:
    other = FindingFactory(team=TeamFactory(slug="storefront"))

    result = triage.findings_set_status(ids=[other.pk], by=champion, status=Status.TRIAGED)

    assert result.skipped == {"you may not triage this team's findings": 1}


def test_status_changes_are_audited_once_per_team_and_action(team, champion) -> None:
    findings = FindingFactory.create_batch(3, team=team)

    triage.findings_set_status(ids=[f.pk for f in findings], by=champion, status=Status.DUPLICATE, reason="same as #1", ip="10.0.0.7")

    record = AuditEvent.objects.get(action=AuditEvent.Action.STATUS_CHANGED)
    assert (record.summary, record.actor, record.ip, record.team, record.details["count"]) == (
        "3 findings marked duplicate",
        champion,
        "10.0.0.7",
        team,
        3,
    )


def test_reopening_a_false_positive_by_hand_restarts_its_sla_clock(team, champion, settings) -> None:
    settings.VIGIL_SLA_RESTART_ON_REOPEN = True
    finding = FindingFactory(team=team, status=Status.FALSE_POSITIVE, severity="critical")

    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.OPEN, reason="the fix was reverted")

    finding.refresh_from_db()
    assert finding.status == Status.OPEN
    assert finding.sla_started_on == finding.status_changed_at.date()
    assert (finding.due_date - finding.sla_started_on).days == 7


def test_assigning_records_the_previous_and_new_assignee(team, champion, member) -> None:
    finding = FindingFactory(team=team)

    triage.findings_assign(ids=[finding.pk], by=champion, assignee=member, reason="owns the payment API")

    finding.refresh_from_db()
    event = FindingEvent.objects.get(finding=finding)
    assert finding.assignee == member
    assert (event.type, event.data, event.reason) == (
        "assigned",
        {"from_assignee": None, "to_assignee": member.pk, "to_name": "mo"},
        "owns the payment API",
    )


def test_a_finding_cannot_be_assigned_to_someone_outside_its_team(team, champion) -> None:
    finding = FindingFactory(team=team)
    outsider = MembershipFactory(team=TeamFactory(slug="storefront"), role=Role.MEMBER).user

    result = triage.findings_assign(ids=[finding.pk], by=champion, assignee=outsider)

    assert result.skipped == {f"{outsider} is not a member of the finding's team": 1}


def test_undo_restores_the_previous_status_and_is_itself_an_event(team, champion) -> None:
    finding = FindingFactory(team=team, status=Status.TRIAGED)
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.FALSE_POSITIVE, reason="scanner bug")
    event = FindingEvent.objects.get(finding=finding)

    undo = triage_undo.event_undo(event=event, by=champion, reason="it is real after all")

    finding.refresh_from_db()
    assert finding.status == Status.TRIAGED
    assert (undo.type, undo.from_status, undo.to_status, undo.undoes, undo.reason) == (
        "undone",
        "false_positive",
        "triaged",
        event,
        "it is real after all",
    )


def test_an_event_cannot_be_undone_twice(team, champion) -> None:
    finding = FindingFactory(team=team)
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.TRIAGED)
    event = FindingEvent.objects.get(finding=finding)
    triage_undo.event_undo(event=event, by=champion)

    with pytest.raises(ApplicationError) as error:
        triage_undo.event_undo(event=event, by=champion)

    assert error.value.message == "cannot undo: already undone"


def test_an_older_status_change_cannot_be_undone_before_the_later_one(team, champion) -> None:
    finding = FindingFactory(team=team)
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.TRIAGED)
    first = FindingEvent.objects.get(finding=finding)
    triage.findings_set_status(ids=[finding.pk], by=champion, status=Status.IN_PROGRESS)

    with pytest.raises(ApplicationError) as error:
        triage_undo.event_undo(event=first, by=champion)

    assert error.value.status == 409


def test_undo_of_an_assignment_restores_the_previous_assignee(team, champion, member) -> None:
    finding = FindingFactory(team=team, assignee=champion)
    triage.findings_assign(ids=[finding.pk], by=champion, assignee=member)
    event = FindingEvent.objects.get(finding=finding, type="assigned")

    triage_undo.event_undo(event=event, by=champion)

    finding.refresh_from_db()
    assert finding.assignee == champion


def test_a_whole_bulk_action_is_undone_except_findings_changed_since(team, champion) -> None:
    findings = FindingFactory.create_batch(3, team=team)
    result = triage.findings_set_status(
        ids=[f.pk for f in findings], by=champion, status=Status.FALSE_POSITIVE, reason="vendored test data"
    )
    triage.findings_set_status(ids=[findings[0].pk], by=champion, status=Status.OPEN, reason="this one is real")

    undone = triage_undo.batch_undo(batch=result.batch, by=champion)

    assert sorted(undone.changed) == sorted([findings[1].pk, findings[2].pk])
    assert undone.skipped == {"the finding changed since": 1}
    assert list(Finding.objects.order_by("id").values_list("status", flat=True)) == ["open", "open", "open"]


def test_comments_are_kept_with_their_author(team, member) -> None:
    finding = FindingFactory(team=team)

    comment = triage.finding_comment(finding=finding, by=member, body="  Asked the vendor on Monday.  ")

    assert (comment.body, comment.author, comment.finding) == ("Asked the vendor on Monday.", member, finding)


def test_a_manager_cannot_comment(team, manager) -> None:
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        triage.finding_comment(finding=finding, by=manager, body="why is this open?")

    assert error.value.status == 403


def test_finding_update_refuses_an_expiry_without_risk_accepted(team, champion) -> None:
    finding = FindingFactory(team=team)

    with pytest.raises(ApplicationError) as error:
        finding_updates.finding_update(finding=finding, by=champion, status=Status.TRIAGED, expires=finding.first_seen.date())

    assert error.value.code == "expires_without_acceptance"


def test_finding_update_changes_status_assignee_and_comment_at_once(team, champion, member) -> None:
    finding = FindingFactory(team=team)

    updated = finding_updates.finding_update(
        finding=finding, by=champion, status=Status.IN_PROGRESS, set_assignee=True, assignee="mo", comment="Mo takes it."
    )

    assert (updated.status, updated.assignee, updated.comments.get().body) == ("in_progress", member, "Mo takes it.")


def test_bulk_refuses_more_than_the_configured_maximum(team, champion, settings) -> None:
    settings.VIGIL_BULK_MAX = 2
    findings = FindingFactory.create_batch(3, team=team)

    with pytest.raises(ApplicationError) as error:
        finding_updates.findings_bulk(ids=[f.pk for f in findings], by=champion, action="false_positive", reason="noise")

    assert error.value.code == "selection_too_large"


def test_bulk_status_change_costs_the_same_queries_for_many_findings(team, champion, django_assert_max_num_queries) -> None:
    findings = FindingFactory.create_batch(60, team=team)

    with django_assert_max_num_queries(10):
        result = finding_updates.findings_bulk(ids=[f.pk for f in findings], by=champion, action="status", status=Status.TRIAGED, reason="")

    assert len(result.changed) == 60
