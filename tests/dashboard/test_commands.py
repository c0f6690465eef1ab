"""The command-line contracts in PRODUCT.md: create_team, create_token, ingest."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import ApiToken, Finding, Team
from dashboard.services.tokens import token_authenticate
from tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_team_and_token_prints_only_a_working_token() -> None:
    run("create_team", "payments", "--name", "Payments")

    printed = run("create_token", "--team", "payments", "--name", "payments CI", "--scope", "read").strip()

    assert Team.objects.get(slug="payments").name == "Payments"
    assert printed.startswith("vgl_") and len(printed.split()) == 1
    token = token_authenticate(printed)
    assert token is not None and token.scope == "read" and token.team.slug == "payments"
    assert printed not in ApiToken.objects.values_list("key_hash", flat=True)


def test_create_token_for_a_missing_team_fails_clearly() -> None:
    with pytest.raises(CommandError, match="no team 'ghost'"):
        run("create_token", "--team", "ghost", "--name", "x")


def test_ingest_prints_the_api_summary_and_stores_findings() -> None:
    run("create_team", "payments")

    summary = json.loads(
        run(
            "ingest",
            str(FIXTURES / "trivy/trivy-golden_alpine-310_image.json"),
            "--team",
            "payments",
            "--image",
            "registry.example.com/payments/api:1.0",
        )
    )

    assert summary["status"] == "done"
    assert summary["counts"] == {"new": 4, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert summary["team"] == "payments"
    assert Finding.objects.filter(team__slug="payments").count() == 4


def test_ingest_of_a_broken_or_missing_file_fails_with_the_reason(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_bytes((FIXTURES / "trivy/trivy-golden_alpine-310_image.json").read_bytes()[:500])

    with pytest.raises(CommandError, match="invalid JSON"):
        run("ingest", str(broken))
    with pytest.raises(CommandError, match="No such file"):
        run("ingest", str(tmp_path / "missing.json"))
    assert Finding.objects.count() == 0
