"""What the points of enforcement keep between requests (the training catalogue, a minute), and what never waits on it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from dashboard.models import Finding, Status
from dashboard.selectors import training
from dashboard.services.running import forget_written
from dashboard.services.tokens import token_create
from scanners.base import ImageRef
from tests.conftest import FIXTURES
from tests.factories import FindingFactory, ImageFactory, ImageVersionFactory, TeamFactory, TopicFactory, TrainingModuleFactory

pytestmark = pytest.mark.django_db

POD = FIXTURES / "admission-review" / "requests" / "pod_create.json"  # nginx:1.14.2 in namespace default


class Clock:
    """``time.monotonic`` as the picker reads it, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    forget_written()
    fake = Clock()
    monkeypatch.setattr(training.time, "monotonic", fake)
    return fake


@pytest.fixture
def payments():
    return TeamFactory(slug="payments")


@pytest.fixture
def webhook(payments) -> APIClient:
    _, plaintext = token_create(team=payments, name="prod webhook", scope="admission", cluster="prod")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def finding(payments) -> Finding:
    ref = ImageRef.parse("nginx:1.14.2")
    image = ImageFactory(registry=ref.registry, repository=ref.repository, team=payments)
    ImageVersionFactory(image=image, tag=ref.tag)
    values = {"rule_id": "CVE-2023-0286", "severity": "critical", "package_name": "openssl", "fixed_version": "3.0.8"}
    return FindingFactory(image=image, team=payments, package_type="debian", **values)


@pytest.fixture
def patching() -> str:
    topic = TopicFactory(slug="os-package-cves", keys=["vigil:os-package-cves"])
    return TrainingModuleFactory(title="Patch your base image", topics=[topic]).title


def warnings(client: APIClient) -> list[str]:
    answer = client.post("/api/v1/admission/validate", POD.read_text(), content_type="application/json")
    assert answer.status_code == 200, answer.content
    return answer.json()["response"].get("warnings", [])


def queries_of(client: APIClient) -> int:
    with CaptureQueriesContext(connection) as captured:
        warnings(client)
    return len(captured.captured_queries)


@pytest.fixture
def no_memo(settings) -> None:
    """Every decision reads its inputs (what the decision memo saves is pinned in test_decision_memo.py)."""
    settings.VIGIL_DECISION_MEMO_SECONDS = 0


def test_the_catalogue_is_read_once_a_minute(webhook, finding, patching, clock, no_memo) -> None:
    warnings(webhook)  # the token's first use from this address
    training.forget_module_picker()
    first = queries_of(webhook)
    again = queries_of(webhook)
    clock.now += training.PICKER_SECONDS
    after_a_minute = queries_of(webhook)
    assert (first - again, after_a_minute) == (3, first)


def test_a_module_added_is_taught_after_at_most_a_minute(webhook, finding, clock) -> None:
    before = warnings(webhook)
    topic = TopicFactory(slug="os-package-cves", keys=["vigil:os-package-cves"])
    TrainingModuleFactory(title="Patch your base image", topics=[topic])
    within = warnings(webhook)
    clock.now += training.PICKER_SECONDS
    after = warnings(webhook)
    assert [("learn: Patch your base image" in " ".join(lines)) for lines in (before, within, after)] == [False, False, True]


def test_a_false_positive_counts_at_the_very_next_decision_with_the_catalogue_kept(webhook, finding, patching) -> None:
    taught = warnings(webhook)
    Finding.objects.filter(pk=finding.pk).update(status=Status.FALSE_POSITIVE)
    assert (any(patching in line for line in taught), warnings(webhook)) == (True, [])


def test_the_gate_teaches_from_the_kept_catalogue_and_decides_fresh(payments, finding, patching) -> None:
    _, plaintext = token_create(team=payments, name="ci", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    first = client.get("/api/v1/gate/", {"image": "nginx:1.14.2"}).json()
    Finding.objects.filter(pk=finding.pk).update(status=Status.FALSE_POSITIVE)
    second = client.get("/api/v1/gate/", {"image": "nginx:1.14.2"}).json()
    assert (first["decision"], first["reasons"][0]["module"]["title"], second["decision"]) == ("warn", patching, "pass")


def test_a_warned_decision_reads_token_rules_image_policy_findings_and_writes_its_record_and_event(
    webhook, finding, patching, django_assert_num_queries, no_memo
) -> None:
    warnings(webhook)  # the token's first use from this address; the catalogue read
    stored = {"postgresql": 1, "sqlite": 2}[connection.vendor]  # the event's report and payload: one statement or two
    with django_assert_num_queries(8 + stored + 2):  # and the savepoints around the records and around storing the event
        taught = warnings(webhook)
    assert any(patching in line for line in taught)
