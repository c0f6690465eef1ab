"""Every token expires: `create_token --days 0` or `--days -1` is refused; `--no-expiry` is an audited administrator's choice."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.errors import ApplicationError
from dashboard.models import ApiToken, AuditEvent
from dashboard.services.tokens import token_create
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def create_token(*args: str) -> str:
    out = StringIO()
    call_command("create_token", "--team", "payments", "--name", "payments CI", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def team():
    return TeamFactory(slug="payments")


@pytest.mark.parametrize("days", ["0", "-1", "-365", "3651", "99999999999"])
def test_a_lifetime_that_is_not_1_to_3650_days_is_refused_and_creates_nothing(days: str) -> None:
    with pytest.raises(CommandError, match=f"must be 1 to 3650 days, not {days}: every token expires"):
        create_token("--days", days)

    assert ApiToken.objects.count() == 0


def test_one_day_is_the_shortest_lifetime() -> None:
    create_token("--days", "1")

    token = ApiToken.objects.get()
    assert (token.expires_at - token.created_at).total_seconds() == pytest.approx(86400, abs=5)


def test_a_misconfigured_default_lifetime_is_refused_too(settings) -> None:
    settings.VIGIL_TOKEN_DAYS = 0

    with pytest.raises(CommandError, match="VIGIL_TOKEN_DAYS must be 1 to 3650 days, not 0"):
        create_token()


def test_no_expiry_creates_a_token_that_never_expires_and_the_audit_log_says_so() -> None:
    create_token("--no-expiry")

    token = ApiToken.objects.get()
    event = AuditEvent.objects.get(action="token.created", target_id=token.prefix)
    assert token.expires_at is None
    assert event.summary.endswith("that never expires")
    assert event.details["no_expiry"] is True


def test_no_expiry_and_days_together_are_refused() -> None:
    with pytest.raises(CommandError):
        create_token("--no-expiry", "--days", "30")

    assert ApiToken.objects.count() == 0


def test_the_service_refuses_no_expiry_to_someone_who_is_not_an_administrator(team) -> None:
    with pytest.raises(ApplicationError, match="only administrators") as refused:
        token_create(team=team, name="mine", no_expiry=True, created_by=UserFactory(is_superuser=False))

    admin_token, _ = token_create(team=team, name="ops", no_expiry=True, created_by=UserFactory(is_superuser=True))
    assert refused.value.status == 403
    assert admin_token.expires_at is None


def test_the_service_refuses_zero_days_as_the_command_does(team) -> None:
    with pytest.raises(ApplicationError, match="every token expires"):
        token_create(team=team, name="ci", days=0)
