"""Tokens for machines: teams and integrations, scopes, expiry, revocation, rotation, addresses, logs."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.errors import ApplicationError
from dashboard.log_redaction import RedactingFormatter, RedactSecrets, redact
from dashboard.models import ApiToken, AuditEvent, Finding, TokenAddress
from dashboard.services.tokens import TOKEN_LENGTH, token_authenticate, token_create, token_revoke, token_rotate
from tests.conftest import fixture_bytes
from tests.factories import FindingFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


ALPINE = "trivy/trivy-golden_alpine-310_image.json"


def client_for(token: str, ip: str = "198.51.100.10") -> APIClient:
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def post(client: APIClient, query: str = ""):
    return client.generic("POST", f"/api/v1/reports/{query}", fixture_bytes(ALPINE), content_type="application/json")


@pytest.fixture
def teams():
    return TeamFactory(slug="payments"), TeamFactory(slug="storefront"), TeamFactory(slug="platform")


def test_a_token_is_shown_once_and_stored_only_as_a_keyed_hash_with_a_public_prefix(teams) -> None:
    token, plaintext = token_create(team=teams[0], name="payments CI")

    stored = ApiToken.objects.filter(pk=token.pk).values_list("prefix", "key_hash").get()
    assert len(plaintext) == TOKEN_LENGTH
    assert plaintext.startswith(f"vgl_{stored[0]}")
    assert plaintext not in stored[1]
    assert len(stored[1]) == 64


@pytest.mark.django_db(transaction=True)
def test_an_integration_token_may_name_any_team_it_covers_and_no_other(teams) -> None:
    payments, storefront, platform = teams
    _, plaintext = token_create(team=platform, name="cluster falco", extra_teams=[payments, storefront])
    client = client_for(plaintext)

    assert post(client, "?image=registry.example.com/payments/api:1&team=payments").status_code == 202
    assert post(client, "?image=registry.example.com/storefront/web:1&team=storefront").status_code == 202
    refused = post(client, "?image=registry.example.com/x/y:1&team=unknown")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden_team")
    assert sorted(set(Finding.objects.values_list("team__slug", flat=True))) == ["payments", "storefront"]


def test_a_read_token_of_an_integration_reads_the_teams_it_covers_only(teams) -> None:
    payments, storefront, platform = teams
    covered = [FindingFactory(team=payments), FindingFactory(team=storefront)]
    hidden = FindingFactory(team=platform)
    _, plaintext = token_create(team=payments, name="reader", scope="read", extra_teams=[storefront])
    client = client_for(plaintext)

    listed = client.get("/api/v1/findings/").json()

    assert sorted(row["id"] for row in listed["results"]) == sorted(f.pk for f in covered)
    assert client.get(f"/api/v1/findings/{hidden.pk}/").status_code == 404


def test_an_expired_or_revoked_token_is_refused(teams) -> None:
    expired, expired_plain = token_create(team=teams[0], name="old", scope="read", days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked, revoked_plain = token_create(team=teams[0], name="leaked", scope="read")
    token_revoke(token=revoked, reason="posted in a public issue")

    assert client_for(expired_plain).get("/api/v1/findings/").status_code == 401
    assert client_for(revoked_plain).get("/api/v1/findings/").status_code == 401
    assert AuditEvent.objects.filter(action="token.revoked", target_id=revoked.prefix, reason="posted in a public issue").count() == 1


def test_the_default_lifetime_is_configurable(teams, settings) -> None:
    settings.VIGIL_TOKEN_DAYS = 30

    token, _ = token_create(team=teams[0], name="ci")

    assert (token.expires_at - token.created_at).days == 29


def test_during_rotation_both_tokens_work_until_the_old_one_ends(teams) -> None:
    old, old_plain = token_create(team=teams[0], name="ci", scope="read", extra_teams=[teams[1]], allowed_cidrs=["198.51.100.0/24"])

    new, new_plain = token_rotate(token=old, overlap_hours=2)

    assert client_for(old_plain).get("/api/v1/findings/").status_code == 200
    assert client_for(new_plain).get("/api/v1/findings/").status_code == 200
    old.refresh_from_db()
    assert 7190 < (old.expires_at - timezone.now()).total_seconds() <= 7200
    assert (new.scope, new.team_ids(), new.allowed_cidrs, new.rotated_from_id) == (
        "read",
        {teams[0].pk, teams[1].pk},
        ["198.51.100.0/24"],
        old.pk,
    )
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_for(old_plain).get("/api/v1/findings/").status_code == 401
    assert client_for(new_plain).get("/api/v1/findings/").status_code == 200


def test_use_is_recorded_and_a_new_address_is_audited_once(teams) -> None:
    token, plaintext = token_create(team=teams[0], name="ci", scope="read")

    client_for(plaintext, ip="198.51.100.10").get("/api/v1/findings/")
    client_for(plaintext, ip="198.51.100.10").get("/api/v1/findings/")
    client_for(plaintext, ip="203.0.113.5").get("/api/v1/findings/")

    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.5"
    assert token.last_used_at is not None
    assert sorted(TokenAddress.objects.filter(token=token).values_list("ip", flat=True)) == ["198.51.100.10", "203.0.113.5"]
    assert list(AuditEvent.objects.filter(action="token.new_ip").order_by("id").values_list("ip", "actor_label")) == [
        ("198.51.100.10", f"token ci ({token.prefix})"),
        ("203.0.113.5", f"token ci ({token.prefix})"),
    ]


def test_a_token_with_an_allow_list_is_refused_elsewhere_and_the_refusal_is_audited_once_an_hour(teams) -> None:
    _, plaintext = token_create(team=teams[0], name="ci", scope="read", allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"])

    inside = client_for(plaintext, ip="10.1.2.3").get("/api/v1/findings/")
    inside_v6 = client_for(plaintext, ip="2001:db8::1").get("/api/v1/findings/")
    outside = client_for(plaintext, ip="192.0.2.1").get("/api/v1/findings/")
    client_for(plaintext, ip="192.0.2.1").get("/api/v1/findings/")

    assert (inside.status_code, inside_v6.status_code) == (200, 200)
    assert outside.status_code == 403
    assert outside.json()["error"] == {"code": "address_not_allowed", "message": "this token may not be used from 192.0.2.1"}
    assert AuditEvent.objects.filter(action="token.refused_ip", ip="192.0.2.1").count() == 1


def test_an_invalid_allow_list_is_refused_at_creation(teams) -> None:
    with pytest.raises(ApplicationError) as refused:
        token_create(team=teams[0], name="ci", allowed_cidrs=["10.0.0.0/33"])

    assert refused.value.code == "invalid_cidr"


def test_creation_is_audited_without_the_secret(teams) -> None:
    token, plaintext = token_create(team=teams[0], name="ci", scope="ingest", extra_teams=[teams[1]], signing=True)

    record = AuditEvent.objects.get(action="token.created")
    assert record.summary == f"token ci ({token.prefix}) created with scope ingest for payments and storefront"
    assert plaintext not in str(record.details)
    assert record.details["signed"] is True


def test_tokens_are_redacted_from_log_lines_and_tracebacks(teams) -> None:
    _, plaintext = token_create(team=teams[0], name="ci")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(RedactingFormatter("%(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("posted with %s", plaintext)
        logger.warning("header Authorization: Bearer %s", "abc.def")
        try:
            raise ValueError(plaintext)
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)

    output = stream.getvalue()
    assert plaintext not in output
    assert "abc.def" not in output
    assert output.count("[redacted]") == 3
    assert redact("vgs_" + "ab" * 32) == "[redacted]"


def test_a_token_in_the_query_string_is_not_accepted(teams) -> None:
    _, plaintext = token_create(team=teams[0], name="ci", scope="read")

    assert APIClient().get(f"/api/v1/findings/?token={plaintext}").status_code == 401


def test_authentication_looks_a_token_up_in_one_query(teams, django_assert_num_queries) -> None:
    _, plaintext = token_create(team=teams[0], name="ci", scope="read")

    with django_assert_num_queries(1):
        assert token_authenticate(plaintext) is not None
    with django_assert_num_queries(0):
        assert token_authenticate(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None


def test_the_lookup_builds_the_token_and_its_team_as_the_orm_does(teams, django_assert_num_queries) -> None:
    created, plaintext = token_create(team=teams[0], name="falco", allowed_cidrs=["10.0.0.0/8"], signing=True)
    ApiToken.objects.filter(pk=created.pk).update(last_used_at=timezone.now(), last_used_ip="10.1.2.3")
    teams[0].sla_days = {"critical": 3}
    teams[0].save()
    orm = ApiToken.objects.select_related("team").get(pk=created.pk)

    token = token_authenticate(plaintext)
    with django_assert_num_queries(0):
        team = token.team

    assert {f.attname: getattr(token, f.attname) for f in ApiToken._meta.concrete_fields} == {
        f.attname: getattr(orm, f.attname) for f in ApiToken._meta.concrete_fields
    }
    assert {f.attname: getattr(team, f.attname) for f in team._meta.concrete_fields} == {
        f.attname: getattr(orm.team, f.attname) for f in team._meta.concrete_fields
    }
    assert (token.expires_at.tzinfo is not None, token.allowed_cidrs, team.sla_days) == (True, ["10.0.0.0/8"], {"critical": 3})
    assert (token._state.adding, token._state.db, team._state.adding) == (False, "default", False)


def test_a_revoked_token_is_refused_by_the_very_next_request(teams) -> None:
    token, plaintext = token_create(team=teams[0], name="ci", scope="read")
    client = client_for(plaintext)
    before = client.get("/api/v1/findings/").status_code

    token_revoke(token=token, reason="leaked")

    assert (before, client.get("/api/v1/findings/").status_code) == (200, 401)


def test_the_commands_create_an_integration_token_rotate_it_and_revoke_it(teams) -> None:
    out = io.StringIO()
    call_command(
        "create_token", "--team", "platform", "--name", "falco", "--scope", "ingest", "--also-team", "payments",
        "--allow-ip", "10.0.0.0/8", "--signing", stdout=out,
    )  # fmt: skip
    plaintext, secret = out.getvalue().split()
    token = token_authenticate(plaintext)
    assert token is not None
    assert (token.team_ids(), token.allowed_cidrs, secret.startswith("vgs_")) == ({teams[2].pk, teams[0].pk}, ["10.0.0.0/8"], True)

    rotated = io.StringIO()
    call_command("rotate_token", token.prefix, "--overlap-hours", "0", stdout=rotated)
    call_command("revoke_token", token.prefix, stdout=io.StringIO())

    assert token_authenticate(plaintext) is None
    assert token_authenticate(rotated.getvalue().split()[0]) is not None
