"""The findings API: detail contract, PATCH with the UI's rules, bulk update and CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.models import Finding, FindingEvent, RiskAcceptance, Role, Status
from dashboard.services.tokens import token_create
from tests.factories import FindingFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def token_client(team, scope: str) -> APIClient:
    _, token = token_create(team=team, name=f"{scope} token", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def finding(team):
    return FindingFactory(
        team=team,
        rule_id="CVE-2021-44228",
        severity="critical",
        kev=True,
        epss=0.94358,
        risk_score=84.2,
        risk_parts={"severity": 55.0, "kev": 15.0, "epss": 14.2},
    )


def test_a_finding_in_the_api_has_the_contract_fields(team, finding) -> None:
    body = token_client(team, "read").get(f"/api/v1/findings/{finding.pk}/").json()

    assert {key: body[key] for key in ("id", "status", "severity", "rule_id", "kind", "team", "kev", "epss", "risk_score")} == {
        "id": finding.pk,
        "status": "open",
        "severity": "critical",
        "rule_id": "CVE-2021-44228",
        "kind": "vulnerability",
        "team": "payments",
        "kev": True,
        "epss": 0.94358,
        "risk_score": 84.2,
    }
    assert body["image"] == finding.image.name
    assert body["due_date"] is None
    assert body["risk_parts"] == {"severity": 55.0, "kev": 15.0, "epss": 14.2}


def test_epss_is_null_when_unknown(team) -> None:
    plain = FindingFactory(team=team)

    assert token_client(team, "read").get(f"/api/v1/findings/{plain.pk}/").json()["epss"] is None


def test_patch_with_an_admin_token_marks_a_false_positive(team, finding) -> None:
    response = token_client(team, "admin").patch(
        f"/api/v1/findings/{finding.pk}/", {"status": "false_positive", "reason": "not loaded at runtime"}, format="json"
    )

    event = FindingEvent.objects.get(finding=finding)
    assert response.status_code == 200
    assert response.json()["status"] == "false_positive"
    assert (event.to_status, event.reason, event.actor, event.data["by"].startswith("token admin token")) == (
        "false_positive",
        "not loaded at runtime",
        None,
        True,
    )


def test_patch_risk_accepted_with_an_expiry(team, finding) -> None:
    expires = timezone.localdate() + dt.timedelta(days=45)

    response = token_client(team, "admin").patch(
        f"/api/v1/findings/{finding.pk}/",
        {"status": "risk_accepted", "reason": "isolated network", "expires": expires.isoformat()},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "risk_accepted"
    assert RiskAcceptance.objects.get().expires == expires


def test_with_four_eyes_patch_risk_accepted_answers_202_and_waits_for_approval(team, finding) -> None:
    team.four_eyes = True
    team.save()

    response = token_client(team, "admin").patch(
        f"/api/v1/findings/{finding.pk}/", {"status": "risk_accepted", "reason": "isolated network"}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["status"] == "open"
    assert RiskAcceptance.objects.get().state == "pending"


def test_patch_risk_accepted_without_a_reason_is_400_in_the_error_shape(team, finding) -> None:
    response = token_client(team, "admin").patch(f"/api/v1/findings/{finding.pk}/", {"status": "risk_accepted"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "reason_required", "message": "accepting risk needs a reason: say why, for the people who read the history later"}
    }


def test_an_expiry_needs_risk_accepted(team, finding) -> None:
    response = token_client(team, "admin").patch(
        f"/api/v1/findings/{finding.pk}/", {"status": "triaged", "expires": "2027-01-31"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "expires_without_acceptance"


def test_an_unknown_status_is_a_validation_error(team, finding) -> None:
    response = token_client(team, "admin").patch(f"/api/v1/findings/{finding.pk}/", {"status": "ignored"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"status": ['"ignored" is not a valid choice.']}


def test_a_read_token_may_not_patch(team, finding) -> None:
    response = token_client(team, "read").patch(f"/api/v1/findings/{finding.pk}/", {"status": "triaged"}, format="json")

    assert response.status_code == 403
    assert Finding.objects.get(pk=finding.pk).status == Status.OPEN


def test_another_teams_admin_token_gets_404(finding) -> None:
    response = token_client(TeamFactory(slug="storefront"), "admin").patch(
        f"/api/v1/findings/{finding.pk}/", {"status": "triaged"}, format="json"
    )

    assert response.status_code == 404


def test_a_champions_session_may_patch_status_assignee_and_comment(team, finding) -> None:
    champion = MembershipFactory(team=team, role=Role.CHAMPION, user=UserFactory(username="chris")).user

    response = session_client(champion).patch(
        f"/api/v1/findings/{finding.pk}/", {"status": "in_progress", "assignee": "chris", "comment": "On it."}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["assignee"]) == ("in_progress", "chris")
    assert finding.comments.get().body == "On it."


def test_a_members_session_may_not_accept_risk(team, finding) -> None:
    member = MembershipFactory(team=team, role=Role.MEMBER).user

    response = session_client(member).patch(f"/api/v1/findings/{finding.pk}/", {"status": "risk_accepted", "reason": "fine"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "you may not accept risk for this team (champions do)"


def test_an_impossible_transition_is_409(team) -> None:
    fixed = FindingFactory(team=team, status=Status.FIXED)

    response = token_client(team, "admin").patch(f"/api/v1/findings/{fixed.pk}/", {"status": "triaged"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "a fixed finding cannot become triaged"


def test_bulk_update_by_ids(team) -> None:
    findings = FindingFactory.create_batch(3, team=team)

    response = token_client(team, "admin").post(
        "/api/v1/findings/bulk/", {"ids": [f.pk for f in findings], "action": "status", "status": "triaged"}, format="json"
    )

    body = response.json()
    assert response.status_code == 200
    assert (sorted(body["changed"]), body["skipped"], body["message"]) == (sorted(f.pk for f in findings), {}, "3 findings now triaged.")


def test_bulk_update_by_filter(team) -> None:
    FindingFactory.create_batch(2, team=team, severity="low")
    FindingFactory(team=team, severity="critical")

    response = token_client(team, "admin").post(
        "/api/v1/findings/bulk/",
        {"filter": {"severity": "low"}, "action": "false_positive", "reason": "informational scanner"},
        format="json",
    )

    assert len(response.json()["changed"]) == 2
    assert sorted(Finding.objects.values_list("severity", "status")) == [
        ("critical", "open"),
        ("low", "false_positive"),
        ("low", "false_positive"),
    ]


def test_bulk_update_needs_ids_or_a_filter(team) -> None:
    response = token_client(team, "admin").post("/api/v1/findings/bulk/", {"action": "false_positive"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"non_field_errors": ['give "ids" or "filter"']}


def test_csv_export_endpoint_with_a_read_token(team, finding) -> None:
    FindingFactory(team=team, title="@cmd", severity="low")

    response = token_client(team, "read").get("/api/v1/findings/export.csv?severity=low")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response.status_code == 200
    assert [row[5] for row in rows] == ["title", "'@cmd"]


def test_the_list_keeps_its_contract_filters(team, finding) -> None:
    FindingFactory(team=team, severity="low")

    body = token_client(team, "read").get("/api/v1/findings/?severity=critical&status=open&team=payments").json()

    assert (body["count"], [r["id"] for r in body["results"]]) == (1, [finding.pk])
