"""GET /api/v1/gate/ and POST /api/v1/reports/?wait=: the CI gate on real Trivy reports, in-process tasks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.ingest import receive
from dashboard.models import Finding, GateDecision, Report, Status
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import (
    FindingFactory,
    ImageFactory,
    MembershipFactory,
    RiskAcceptanceFactory,
    TeamFactory,
    TopicFactory,
    TrainingModuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

CRITICAL = "trivy/severity_prio.json"  # one critical and one low vulnerability, both with a fix
MEDIUM_ONLY = "trivy/trivy-golden_alpine-310_image.json"
IMAGE = "registry.example.com/payments/api:1.4.1"


@pytest.fixture
def team():
    return TeamFactory(slug="payments")


def token_client(team, scope: str = "ingest") -> APIClient:
    _, token = token_create(team=team, name=f"payments {scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def ci(team) -> APIClient:
    return token_client(team)


def scan(client: APIClient, fixture: str, image: str = IMAGE, wait: str = "30"):
    return client.generic("POST", f"/api/v1/reports/?image={image}&wait={wait}", fixture_bytes(fixture), content_type="application/json")


def gate(client: APIClient, image: str = IMAGE, **extra: str):
    return client.get("/api/v1/gate/", {"image": image}, **extra)


def test_contract_warn_then_pass_once_triaged_then_fail_under_enforce(team, ci) -> None:
    scan(ci, CRITICAL)
    body = gate(ci).json()
    assert body["decision"] == "warn"
    critical = Finding.objects.get(severity="critical")
    assert [(reason["finding"], reason["rule_id"], reason["rules"]) for reason in body["reasons"]] == [
        (critical.pk, critical.rule_id, ["severity"])
    ]
    assert (body["reasons"][0]["package"], body["reasons"][0]["fix"]) == (critical.package_name, critical.fixed_version)
    assert (body["image"], body["known"], body["policy"]["team"], body["policy"]["mode"]) == (IMAGE, True, None, "warn")

    admin = token_client(team, scope="admin")
    patched = admin.patch(f"/api/v1/findings/{critical.pk}/", {"status": "false_positive", "reason": "not reachable"}, format="json")
    assert patched.status_code == 200
    assert (gate(ci).json()["decision"], gate(ci).json()["reasons"]) == ("pass", [])

    admin.patch(f"/api/v1/findings/{critical.pk}/", {"status": "open", "reason": "it is reachable after all"}, format="json")
    assert gate(ci).json()["decision"] == "warn"
    put = admin.put("/api/v1/policies/payments/", {"mode": "enforce"}, format="json")
    assert (put.status_code, put.json()["mode"], put.json()["version"]) == (200, "enforce", 1)
    body = gate(ci).json()
    assert (body["decision"], body["policy"]["team"], body["policy"]["version"]) == ("fail", "payments", 1)


def test_a_running_risk_acceptance_passes_and_an_expired_one_fails(team, ci) -> None:
    scan(ci, CRITICAL)
    admin = token_client(team, scope="admin")
    admin.put("/api/v1/policies/payments/", {"mode": "enforce"}, format="json")
    critical = Finding.objects.get(severity="critical")
    accepted = admin.patch(
        f"/api/v1/findings/{critical.pk}/",
        {"status": "risk_accepted", "reason": "WAF rule", "expires": str(timezone.localdate() + dt.timedelta(days=30))},
        format="json",
    )
    assert (accepted.status_code, gate(ci).json()["decision"], gate(ci).json()["exempted"]) == (200, "pass", [critical.pk])
    critical.risk_acceptances.update(expires="2020-01-01")  # the nightly expiry has not run yet: the gate does not wait for it
    assert Finding.objects.get(pk=critical.pk).status == Status.RISK_ACCEPTED
    assert gate(ci).json()["decision"] == "fail"


def test_an_image_vigil_never_saw_answers_per_policy_never_404(team, ci) -> None:
    response = gate(ci, image="registry.example.com/payments/new:0.1")
    body = response.json()
    assert (response.status_code, body["decision"], body["known"], body["reasons"]) == (200, "warn", False, [])
    token_client(team, scope="admin").put("/api/v1/policies/payments/", {"unknown_image": "pass"}, format="json")
    assert gate(ci, image="registry.example.com/payments/new:0.1").json()["decision"] == "warn"  # whose policy: nobody owns it yet


def test_an_unscanned_tag_of_a_known_image_is_unknown(ci) -> None:
    scan(ci, MEDIUM_ONLY)
    assert gate(ci).json()["known"] is True
    assert gate(ci, image="registry.example.com/payments/api:9.9.9").json()["known"] is False


def test_another_teams_image_is_unknown_to_the_caller(team) -> None:
    other = TeamFactory(slug="storefront")
    FindingFactory(image=ImageFactory(repository="storefront/web", team=other), team=other, severity="critical", fixed_version="2")
    body = gate(token_client(team, scope="read"), image="registry.example.com/storefront/web").json()
    assert (body["decision"], body["known"], body["reasons"]) == ("warn", False, [])
    assert gate(token_client(other, scope="read"), image="registry.example.com/storefront/web").json()["reasons"] != []


@pytest.mark.parametrize(("image", "code"), [("", "missing_image"), ("not an image", "invalid_image")])
def test_a_bad_image_reference_is_a_400(ci, image: str, code: str) -> None:
    response = gate(ci, image=image)
    assert (response.status_code, response.json()["error"]["code"]) == (400, code)


@pytest.mark.parametrize(("scope", "status"), [("ingest", 200), ("read", 200), ("admin", 200)])
def test_scopes(team, scope: str, status: int) -> None:
    assert gate(token_client(team, scope=scope)).status_code == status


def test_anonymous_is_refused() -> None:
    assert gate(APIClient()).status_code in (401, 403)


def test_every_decision_is_recorded(team, ci) -> None:
    scan(ci, CRITICAL)
    GateDecision.objects.all().delete()
    body = gate(ci).json()
    record = GateDecision.objects.get()
    assert (record.pk, record.image_ref, record.decision, record.mode, record.point, record.reason_count) == (
        body["id"],
        IMAGE,
        "warn",
        "warn",
        "ci",
        1,
    )
    assert (record.token.name, record.policy_version, record.image.name, record.reasons[0]["rule_id"]) == (
        "payments ingest",
        0,
        "registry.example.com/payments/api",
        body["reasons"][0]["rule_id"],
    )


def test_a_reason_names_the_training_module_of_its_topic(ci) -> None:
    topic = TopicFactory(slug="vulnerable-dependencies", keys=["vigil:vulnerable-dependencies"])
    TrainingModuleFactory(title="Keeping dependencies patched", url="https://example.org/patching", topics=[topic])
    scan(ci, CRITICAL)
    module = gate(ci).json()["reasons"][0]["module"]
    assert module == {"title": "Keeping dependencies patched", "url": "https://example.org/patching"}


def test_the_gate_reads_in_a_constant_number_of_queries(team, ci, django_assert_max_num_queries) -> None:
    image = ImageFactory(repository="payments/big", team=team)
    for n in range(30):
        finding = FindingFactory(
            image=image, team=team, severity="critical", fixed_version="9", status=Status.RISK_ACCEPTED if n % 2 else Status.OPEN
        )
        RiskAcceptanceFactory(team=team, findings=[finding], expires="2020-01-01")
    gate(ci, image="registry.example.com/payments/other")  # the token's first use from this address is recorded once
    with django_assert_max_num_queries(10):
        body = gate(ci, image="registry.example.com/payments/big").json()
    assert len(body["reasons"]) == 30


def test_the_text_answer_names_decision_reasons_and_fixes(ci) -> None:
    scan(ci, CRITICAL)
    text = gate(ci, HTTP_ACCEPT="text/plain").content.decode()
    critical = Finding.objects.get(severity="critical")
    assert text.splitlines()[0] == "decision: warn"
    assert f"- {critical.rule_id} (critical) in {critical.package_name}" in text
    assert f"fix: upgrade to {critical.fixed_version}" in text


# --- POST /api/v1/reports/?wait= ----------------------------------------------------------------


def test_wait_answers_200_with_the_report_and_the_gate(ci) -> None:
    response = scan(ci, CRITICAL)
    body = response.json()
    assert (response.status_code, body["status"], body["counts"]["new"], body["gate"]["decision"], body["gate"]["image"]) == (
        200,
        "done",
        2,
        "warn",
        IMAGE,
    )
    assert GateDecision.objects.get().report_id == Report.objects.get().pk


def test_wait_on_a_clean_image_passes(ci) -> None:
    assert scan(ci, MEDIUM_ONLY).json()["gate"]["decision"] == "pass"


@pytest.mark.parametrize("wait", ["abc", "-1", "121", "nan", "inf"])
def test_a_bad_wait_is_a_400_and_stores_nothing(ci, wait: str) -> None:
    response = scan(ci, CRITICAL, wait=wait)
    assert (response.status_code, response.json()["error"]["code"], Report.objects.count()) == (400, "invalid_wait", 0)


def test_without_wait_the_202_contract_holds(ci) -> None:
    response = ci.generic("POST", f"/api/v1/reports/?image={IMAGE}", fixture_bytes(CRITICAL), content_type="application/json")
    assert (response.status_code, set(response.json())) == (202, {"id", "status", "url"})


def test_a_report_not_done_in_time_answers_202(ci, monkeypatch) -> None:
    monkeypatch.setattr(receive, "enqueue", lambda report_id, **options: True)  # published to a worker that is busy elsewhere
    response = scan(ci, CRITICAL, wait="0.5")
    assert (response.status_code, response.json()["status"]) == (202, "queued")


def test_a_session_user_waits_too(team) -> None:
    user = UserFactory(username="carol")
    MembershipFactory(user=user, team=team)
    client = APIClient()
    client.force_login(user)
    response = client.generic(
        "POST", f"/api/v1/reports/?image={IMAGE}&team=payments&wait=10", fixture_bytes(CRITICAL), content_type="application/json"
    )
    assert (response.status_code, response.json()["gate"]["decision"]) == (200, "warn")
