"""Toxic combinations: which conditions hold, in which order, for whom."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from dashboard.models import WorkloadSighting
from dashboard.services.tokens import token_create
from tests.factories import (
    FindingFactory,
    FindingOccurrenceFactory,
    ImageFactory,
    MembershipFactory,
    TeamFactory,
    WorkloadSightingFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def payments():
    return TeamFactory(slug="payments")


def running_vulnerability(team, *, workload: str, **values: object):
    image = ImageFactory(team=team)
    finding = FindingFactory(team=team, image=image, exposed=True, **{"rule_id": "CVE-2021-44228", "kev": True, **values})
    FindingOccurrenceFactory(finding=finding, tag="1.0.0")
    WorkloadSightingFactory(image=image, tag="1.0.0", cluster="prod", namespace="payments", workload_name=workload)
    return finding


def workload_finding(team, *, workload: str, **values: object):
    return FindingFactory(
        team=team, image=None, scope_key="k", resource_cluster="prod", resource_namespace="payments", resource_name=workload, **values
    )


def test_rows_say_which_conditions_hold_and_the_most_toxic_comes_first(payments) -> None:
    plain = running_vulnerability(payments, workload="web", risk_score=90)
    toxic = running_vulnerability(payments, workload="api", risk_score=50)
    workload_finding(payments, workload="api", kind="misconfiguration", source="trivy-operator", rule_id="KSV017", title="Privileged")
    workload_finding(payments, workload="api", kind="runtime", stream="runtime", source="falco", rule_id="Terminal shell in container")
    rows = APIClient()
    rows.force_authenticate(MembershipFactory(team=payments).user)
    results = rows.get("/api/v1/toxic/?team=payments").json()["results"]
    assert [row["finding"] for row in results] == [toxic.pk, plain.pk]
    first = results[0]["conditions"]
    assert [first[name]["holds"] for name in ("exploitable", "running", "privileged", "runtime_alert")] == [True, True, True, True]
    assert "privileged (KSV017)" in first["privileged"]["why"]
    assert results[0]["why_first"].startswith("4 of 4: in CISA KEV")
    assert [results[1]["conditions"][name]["holds"] for name in ("privileged", "runtime_alert")] == [False, False]


def test_a_vulnerability_that_is_not_exploitable_or_not_running_is_no_row(payments, settings) -> None:
    settings.VIGIL_TOXIC_EPSS = 0.5
    running_vulnerability(payments, workload="low-epss", kev=False, epss=0.2)
    not_running = running_vulnerability(payments, workload="old", risk_score=99)
    not_running.image.sightings.update(last_seen=timezone.now() - dt.timedelta(days=30))
    high = running_vulnerability(payments, workload="high-epss", kev=False, epss=0.7)
    client = APIClient()
    client.force_authenticate(MembershipFactory(team=payments).user)
    assert [row["finding"] for row in client.get("/api/v1/toxic/").json()["results"]] == [high.pk]


def test_an_old_runtime_alert_does_not_count(payments, settings) -> None:
    settings.VIGIL_TOXIC_ALERT_DAYS = 7
    running_vulnerability(payments, workload="api")
    workload_finding(
        payments, workload="api", kind="runtime", stream="runtime", source="falco", last_seen=timezone.now() - dt.timedelta(days=8)
    )
    client = APIClient()
    client.force_authenticate(MembershipFactory(team=payments).user)
    assert client.get("/api/v1/toxic/").json()["results"][0]["conditions"]["runtime_alert"]["holds"] is False


def test_people_and_tokens_see_only_their_teams_rows(payments) -> None:
    running_vulnerability(payments, workload="api")
    other = TeamFactory(slug="search")
    running_vulnerability(other, workload="indexer")
    _, plaintext = token_create(team=other, name="search read", scope="read")
    token = APIClient()
    token.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert [row["team"] for row in token.get("/api/v1/toxic/").json()["results"]] == ["search"]
    assert token.get("/api/v1/toxic/?team=payments").status_code == 404
    browser = Client()
    browser.force_login(MembershipFactory(team=payments).user)
    page = browser.get("/toxic/")
    assert page.status_code == 200
    assert b"payments/Deployment/api" in page.content and b"indexer" not in page.content


def test_an_admission_token_cannot_read_toxic_combinations(payments) -> None:
    _, plaintext = token_create(team=payments, name="webhook", scope="admission")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/v1/toxic/").status_code == 403


def test_toxic_rows_cost_a_constant_number_of_queries(payments, django_assert_max_num_queries) -> None:
    for index in range(6):
        running_vulnerability(payments, workload=f"api{index}")
    client = APIClient()
    client.force_authenticate(MembershipFactory(team=payments).user)
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/v1/toxic/").json()["results"]) == 6


def test_the_running_condition_says_when_it_was_seen_in_the_one_format_with_its_zone(payments) -> None:
    running_vulnerability(payments, workload="api")
    sighting = WorkloadSighting.objects.get(workload_name="api")
    client = APIClient()
    client.force_authenticate(MembershipFactory(team=payments).user)

    why = client.get("/api/v1/toxic/?team=payments").json()["results"][0]["conditions"]["running"]["why"]

    assert why.endswith(f"seen {timezone.localtime(sighting.last_seen):%Y-%m-%d %H:%M} UTC")
