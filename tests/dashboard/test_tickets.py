"""Asking for tickets and creating them: one per finding and tracker, in progress through the triage writer."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.errors import ApplicationError
from dashboard.models import AuditEvent, FindingEvent, Role, Status, Ticket, TicketLink, TrackerKind
from dashboard.services import tickets
from dashboard.trackers import TrackerError
from tests.dashboard.tracker_receiver import Tracker
from tests.factories import (
    FindingFactory,
    ImageFactory,
    MembershipFactory,
    TeamFactory,
    TicketFactory,
    TicketLinkFactory,
    TrackerConfigFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def github(tracker: Tracker, settings) -> Tracker:
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    tracker.answer = {"number": 42, "html_url": "https://github.com/acme/payments/issues/42"}
    return tracker


@pytest.fixture
def ask(django_capture_on_commit_callbacks):
    """ticket_request, and the task it enqueues after the commit (run in-process: tasks are eager in tests)."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return tickets.ticket_request(**kwargs)

    return run


@pytest.fixture
def champion(github: Tracker):
    team = TeamFactory(slug="payments", name="Payments")
    TrackerConfigFactory(team=team, kind=TrackerKind.GITHUB, base_url=github.url, project="acme/payments", secret="ghp_team")
    return MembershipFactory(team=team, role=Role.CHAMPION).user


def test_a_ticket_for_one_finding_is_created_in_the_tracker_and_the_finding_is_in_progress(ask, champion, github: Tracker) -> None:
    finding = FindingFactory(team=champion.memberships.get().team, rule_id="CVE-2024-0001", package_name="openssl", fixed_version="3.0.13")

    ticket = ask(by=champion, ids=[finding.pk])

    ticket.refresh_from_db()
    finding.refresh_from_db()
    assert (ticket.state, ticket.external_id, ticket.url) == ("open", "42", "https://github.com/acme/payments/issues/42")
    assert finding.status == Status.IN_PROGRESS
    assert finding.events.get(type=FindingEvent.Type.STATUS).data == {"ticket": ticket.pk}
    (request,) = github.received
    assert request.headers["authorization"] == "Bearer ghp_team"
    assert request.body["title"] == "[high] CVE-2024-0001 openssl"
    assert f"https://vigil.example.com/findings/{finding.pk}/" in request.body["body"]
    assert AuditEvent.objects.filter(action="ticket.requested", target_id=str(ticket.pk)).count() == 1


def test_asking_twice_gives_the_same_ticket_and_calls_the_tracker_once(ask, champion, github: Tracker) -> None:
    finding = FindingFactory(team=champion.memberships.get().team)

    first = ask(by=champion, ids=[finding.pk])
    second = ask(by=champion, ids=[finding.pk])
    tickets.ticket_create(ticket_id=first.pk)  # a second delivery of the task

    assert first.pk == second.pk
    assert len(github.received) == 1
    assert TicketLink.objects.filter(finding=finding).count() == 1


def test_a_fix_group_is_one_ticket_for_the_active_findings_one_upgrade_fixes(ask, champion, github: Tracker) -> None:
    team = champion.memberships.get().team
    image = ImageFactory(team=team, repository="payments/api")
    same = [FindingFactory(team=team, image=image, package_name="openssl", fixed_version="3.0.13") for _ in range(3)]
    FindingFactory(team=team, image=image, package_name="openssl", fixed_version="3.0.14")
    FindingFactory(team=team, image=image, package_name="openssl", fixed_version="3.0.13", status=Status.FALSE_POSITIVE)

    ticket = ask(by=champion, group_of=same[0].pk)

    assert sorted(ticket.links.values_list("finding_id", flat=True)) == [f.pk for f in same]
    assert github.received[0].body["title"] == "Upgrade openssl to 3.0.13 in payments/api (3 findings)"


def test_a_selection_skips_findings_that_have_a_ticket_already(ask, champion, github: Tracker) -> None:
    team = champion.memberships.get().team
    first, second = FindingFactory(team=team), FindingFactory(team=team)
    earlier = ask(by=champion, ids=[first.pk])
    github.answer = {"number": 43, "html_url": "https://github.com/acme/payments/issues/43"}

    ticket = ask(by=champion, ids=[first.pk, second.pk])

    assert ticket.pk != earlier.pk
    assert list(ticket.links.values_list("finding_id", flat=True)) == [second.pk]


def test_another_team_cannot_ask_and_a_read_only_manager_may_not(ask, champion) -> None:
    finding = FindingFactory(team=champion.memberships.get().team)
    outsider = MembershipFactory(team=TeamFactory(slug="other"), role=Role.CHAMPION).user
    reader = MembershipFactory(team=finding.team, role=Role.MANAGER, can_triage=False).user

    with pytest.raises(ApplicationError) as hidden:
        ask(by=outsider, ids=[finding.pk])
    with pytest.raises(ApplicationError) as refused:
        ask(by=reader, ids=[finding.pk])

    assert (hidden.value.status, refused.value.status) == (404, 403)
    assert Ticket.objects.count() == 0


def test_a_team_without_a_tracker_is_told_so(
    ask,
) -> None:
    member = MembershipFactory(role=Role.MEMBER)
    finding = FindingFactory(team=member.team)

    with pytest.raises(ApplicationError) as missing:
        ask(by=member.user, ids=[finding.pk])

    assert missing.value.code == "no_tracker"


def test_a_tracker_that_refuses_leaves_the_ticket_failed_with_its_answer(ask, champion, github: Tracker) -> None:
    github.status, github.answer = 404, {"message": "Not Found"}
    finding = FindingFactory(team=champion.memberships.get().team)

    ticket = ask(by=champion, ids=[finding.pk])

    ticket.refresh_from_db()
    assert ticket.state == Ticket.State.FAILED
    assert "404" in ticket.error


def test_the_secret_is_kept_when_left_blank_and_never_shown_in_full(champion) -> None:
    team = champion.memberships.get().team

    config = tickets.tracker_configure(team=team, by=champion, kind="jira", base_url="https://acme.atlassian.net/", project="SEC",
                                       username="champion@acme.example", secret="")  # fmt: skip

    assert (config.secret, config.base_url, config.kind) == ("ghp_team", "https://acme.atlassian.net", "jira")
    assert config.secret_hint == "set"
    assert "ghp_team" not in str(AuditEvent.objects.get(action="tracker.changed").details)


def test_the_api_answers_202_with_the_pending_ticket_that_the_task_then_creates(champion, github: Tracker,
                                                                                django_capture_on_commit_callbacks) -> None:  # fmt: skip
    finding = FindingFactory(team=champion.memberships.get().team)
    client = Client()
    client.force_login(champion)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/tickets/", {"findings": [finding.pk]}, content_type="application/json")

    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "state": "pending", "tracker": "github", "key": None, "url": None, "title": body["title"],
                    "findings": [finding.pk], "error": None}  # fmt: skip
    assert Ticket.objects.get(pk=body["id"]).state == Ticket.State.OPEN


def test_the_named_task_creates_a_pending_ticket_once_and_leaves_an_outage_to_retry(champion, github: Tracker) -> None:
    from dashboard.tasks import create_ticket

    team = champion.memberships.get().team
    ticket = TicketFactory(tracker=team.tracker, state=Ticket.State.PENDING, external_id="")
    TicketLinkFactory(ticket=ticket)
    github.status = 503
    with pytest.raises(TrackerError) as outage:
        create_ticket.run(ticket.pk)
    github.status = 201

    create_ticket.run(ticket.pk)
    create_ticket.run(ticket.pk)  # delivered twice

    ticket.refresh_from_db()
    assert create_ticket.name == "vigil.tickets.create"
    assert outage.value.retry is True
    assert TrackerError in create_ticket.autoretry_for
    assert (ticket.state, ticket.external_id) == (Ticket.State.OPEN, "42")
    assert len(github.received) == 2  # the outage, then one creation
