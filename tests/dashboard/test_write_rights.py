"""Write services check the actor's right themselves, whatever the view in front of them checked.

Each of these services trusted its view (the Django admin, the ownership pages) to have refused a person
without the right; called by someone else (another view, the API, a task acting for a person) it would have
written anyway.  ``by=None`` is an operator at the command line.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command

from dashboard.errors import ApplicationError
from dashboard.ingest.rights import EVERYTHING, SenderRights, own_image_items
from dashboard.models import ApiToken, AuditEvent, Membership, OwnershipRule, Role
from dashboard.services.ownership_rules import finding_set_owner, rule_create, rule_delete, rule_update
from dashboard.services.teams import membership_remove, membership_set
from dashboard.services.tokens import token_authenticate, token_create, token_revoke, token_rotate
from tests.factories import FindingFactory, ImageFactory, MembershipFactory, OwnershipRuleFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def champion():
    """The champion of payments: triages and accepts risk there, administers nothing."""
    return MembershipFactory(team=TeamFactory(slug="payments"), role=Role.CHAMPION).user


def refusal(call) -> tuple[int, str]:
    with pytest.raises(ApplicationError) as error:
        call()
    return error.value.status, error.value.code


def test_only_administrators_create_change_and_delete_ownership_rules(champion) -> None:
    payments = champion.memberships.get().team
    rule = OwnershipRuleFactory(team=payments, kind=OwnershipRule.Kind.IMAGE, pattern="registry.example.com/payments/*")

    refused = [
        refusal(lambda: rule_create(team=payments, kind="namespace", pattern="payments-*", by=champion)),
        refusal(lambda: rule_update(rule=rule, team=payments, kind="image", pattern="registry.example.com/x/*", priority=1, by=champion)),
        refusal(lambda: rule_delete(rule=rule, by=champion)),
    ]

    assert refused == [(403, "forbidden")] * 3
    assert list(OwnershipRule.objects.values_list("pattern", flat=True)) == ["registry.example.com/payments/*"]
    assert rule_create(team=payments, kind="namespace", pattern="payments-*", by=UserFactory(is_staff=True)).pk


def test_only_administrators_set_a_findings_owner_by_hand(champion) -> None:
    finding = FindingFactory(team=TeamFactory(slug="storefront"))

    assert refusal(lambda: finding_set_owner(finding=finding, team=champion.memberships.get().team, by=champion)) == (403, "forbidden")

    finding.refresh_from_db()
    assert finding.team.slug == "storefront"


def test_only_administrators_change_memberships(champion) -> None:
    payments = champion.memberships.get().team
    other = UserFactory()

    refused = [
        refusal(lambda: membership_set(user=other, team=payments, role=Role.CHAMPION, by=champion)),
        refusal(lambda: membership_remove(user=champion, team=payments, by=champion)),
    ]

    assert refused == [(403, "forbidden")] * 2
    assert list(Membership.objects.values_list("user__username", "role")) == [(champion.username, Role.CHAMPION)]


def test_only_administrators_create_rotate_and_revoke_tokens(champion) -> None:
    payments = champion.memberships.get().team
    token, _ = token_create(team=payments, name="payments CI")

    refused = [
        refusal(lambda: token_create(team=payments, name="mine", all_teams=True, created_by=champion)),
        refusal(lambda: token_rotate(token=token, by=champion)),
        refusal(lambda: token_revoke(token=token, by=champion)),
    ]

    assert refused == [(403, "forbidden")] * 3
    assert list(ApiToken.objects.values_list("name", "revoked_at")) == [("payments CI", None)]


def test_an_organisation_wide_token_is_created_by_the_command_which_prints_only_the_token_and_audits_the_grant() -> None:
    TeamFactory(slug="platform")
    out = io.StringIO()

    call_command("create_token", "--team", "platform", "--name", "scanner", "--all-teams", stdout=out)

    token = token_authenticate(out.getvalue().strip())
    assert token is not None and token.all_teams
    assert out.getvalue().count("\n") == 1
    record = AuditEvent.objects.get(action=AuditEvent.Action.TOKEN_CREATED)
    assert record.summary.endswith("with organisation-wide ingest (its reports may change every team's findings)")
    assert record.details["all_teams"] is True


def test_rotating_an_organisation_wide_token_keeps_the_grant() -> None:
    token, _ = token_create(team=TeamFactory(slug="platform"), name="scanner", all_teams=True)

    successor, _ = token_rotate(token=token)

    assert successor.all_teams is True


def test_a_read_token_cannot_have_organisation_wide_ingest() -> None:
    assert refusal(lambda: token_create(team=TeamFactory(), name="x", scope="read", all_teams=True)) == (400, "invalid_grant")


def test_the_admin_lists_the_grant_with_each_token(client) -> None:
    token_create(team=TeamFactory(slug="platform"), name="scanner", all_teams=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get("/admin/dashboard/apitoken/").content.decode()

    assert "column-all_teams" in page
    assert 'alt="True"' in page


def test_a_sender_records_sightings_only_of_images_it_may_speak_for() -> None:
    alpha, bravo = TeamFactory(slug="alpha"), TeamFactory(slug="bravo")
    images = {"r/alpha/api": ImageFactory(team=alpha), "r/bravo/api": ImageFactory(team=bravo), "r/nobody": ImageFactory(team=None)}
    items = [SimpleNamespace(image=SimpleNamespace(name=name)) for name in ["r/alpha/api", "r/bravo/api", "r/nobody"]]

    kept = own_image_items(items, images, SenderRights(everything=False, team_ids=frozenset({alpha.pk})))

    assert [item.image.name for item in kept] == ["r/alpha/api", "r/nobody"]
    assert own_image_items(items, images, EVERYTHING) == items
