"""End to end on the real stack: API -> PostgreSQL -> Redis -> a real Celery worker -> findings."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from dashboard.models import Finding, Report
from dashboard.services.tokens import token_create
from tests.conftest import fixture_bytes
from tests.factories import TeamFactory

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("worker")]


def _wait_for(client: APIClient, url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("done", "failed"):
            body["seen"] = seen
            return body
        time.sleep(0.2)
    raise AssertionError(f"report did not finish in {timeout}s; statuses seen: {seen}")


def test_trivy_report_posted_by_ci_is_processed_by_a_real_worker(celery_worker) -> None:
    team = TeamFactory(slug="payments")
    _, token = token_create(team=team, name="payments CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.post(
        "/api/v1/reports/?image=registry.example.com/payments/api:1.4.1",
        data=fixture_bytes("trivy/trivy-golden_alpine-310_image.json"),
        content_type="application/json",
    )

    assert response.status_code == 202
    assert set(response.json()) == {"id", "status", "url"}
    assert response.json()["status"] == "queued"
    assert Report.objects.filter(pk=response.json()["id"]).exists()
    body = _wait_for(client, response.json()["url"])
    assert body["status"] == "done", body
    assert body["counts"] == {"new": 4, "reopened": 0, "unchanged": 0, "fixed": 0}
    assert Finding.objects.filter(team=team, image__repository="payments/api").count() == 4
    assert celery_worker.poll() is None


def test_a_report_posted_with_wait_answers_when_a_real_worker_is_done(celery_worker) -> None:
    team = TeamFactory(slug="payments")
    _, token = token_create(team=team, name="payments CI")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = client.post(
        "/api/v1/reports/?image=registry.example.com/payments/api:1.4.1&wait=60",
        data=fixture_bytes("trivy/severity_prio.json"),
        content_type="application/json",
    )

    body = response.json()
    assert (response.status_code, body["status"], body["counts"]["new"]) == (200, "done", 2), body
    assert (body["gate"]["decision"], body["gate"]["image"], len(body["gate"]["reasons"])) == (
        "warn",
        "registry.example.com/payments/api:1.4.1",
        1,
    )
    assert celery_worker.poll() is None
