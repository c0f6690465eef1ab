"""``create_token --scope admission [--cluster NAME]``: a cluster's webhook token, and what it may not do."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import ApiToken
from dashboard.services.tokens import token_authenticate, token_rotate
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_token_prints_only_an_admission_token_bound_to_its_cluster() -> None:
    TeamFactory(slug="platform")
    printed = run("create_token", "--team", "platform", "--name", "prod webhook", "--scope", "admission", "--cluster", "prod-eu")
    lines = printed.strip().splitlines()
    token = token_authenticate(lines[0])
    assert len(lines) == 1 and token is not None
    assert (token.scope, token.cluster, token.team.slug) == ("admission", "prod-eu", "platform")


def test_a_token_without_cluster_is_not_bound() -> None:
    TeamFactory(slug="platform")
    token = token_authenticate(run("create_token", "--team", "platform", "--name", "webhook", "--scope", "admission").strip())
    assert token is not None and token.cluster == ""


def test_a_cluster_name_with_spaces_is_refused() -> None:
    TeamFactory(slug="platform")
    with pytest.raises(CommandError, match="is not a cluster name"):
        run("create_token", "--team", "platform", "--name", "webhook", "--scope", "admission", "--cluster", "prod eu")
    assert ApiToken.objects.count() == 0


def test_a_rotated_token_keeps_its_cluster() -> None:
    TeamFactory(slug="platform")
    printed = run("create_token", "--team", "platform", "--name", "w", "--scope", "admission", "--cluster", "prod")
    token = token_authenticate(printed.strip())
    assert token is not None
    successor, _ = token_rotate(token=token)
    assert (successor.scope, successor.cluster) == ("admission", "prod")
