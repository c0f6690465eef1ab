""" "Running" per image version and workload: sightings, their expiry, and what the risk score makes of them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.models import EnforcementPolicy, Finding, WorkloadSighting
from dashboard.services import intel
from dashboard.services.running import Sighting, forget_written, running_refresh, sightings_record
from scanners.base import ImageRef
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import (
    EnforcementPolicyFactory,
    FindingFactory,
    FindingOccurrenceFactory,
    ImageVersionFactory,
    MembershipFactory,
    TeamFactory,
    WorkloadSightingFactory,
)

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    forget_written()


@pytest.fixture
def finding():
    found = FindingFactory(rule_id="CVE-2021-44228", severity="critical", fixed_version="2.17.1")
    FindingOccurrenceFactory(finding=found, tag="1.4.1", digest=DIGEST)
    return found


def rescored(finding: Finding) -> Finding:
    intel.findings_rescore(ids=[finding.pk])
    finding.refresh_from_db()
    return finding


def test_a_finding_runs_when_its_digest_runs(finding) -> None:
    WorkloadSightingFactory(image=finding.image, tag="latest", digest=DIGEST)
    assert (rescored(finding).exposed, finding.risk_parts["exposed"]) == (True, 10.0)


def test_another_digest_of_the_same_repository_running_is_not_this_finding_running(finding) -> None:
    WorkloadSightingFactory(image=finding.image, tag="1.4.2", digest=OTHER)
    assert (rescored(finding).exposed, finding.risk_parts["exposed"]) == (False, 0.0)


def test_without_digests_the_tag_decides(finding) -> None:
    WorkloadSightingFactory(image=finding.image, tag="1.4.1", digest="")
    assert rescored(finding).exposed is True


def test_a_sighting_not_seen_for_the_configured_days_no_longer_counts(finding, settings) -> None:
    settings.VIGIL_RUNNING_DAYS = 2
    WorkloadSightingFactory(image=finding.image, digest=DIGEST, last_seen=timezone.now() - dt.timedelta(days=3))
    assert rescored(finding).exposed is False
    settings.VIGIL_RUNNING_DAYS = 5
    assert rescored(finding).exposed is True


def test_the_periodic_refresh_unflags_findings_whose_sightings_expired_and_flags_new_ones(finding, settings) -> None:
    settings.VIGIL_RUNNING_DAYS = 2
    sighting = WorkloadSightingFactory(image=finding.image, digest=DIGEST)
    assert running_refresh() == 1 and Finding.objects.get(pk=finding.pk).exposed is True
    WorkloadSighting.objects.filter(pk=sighting.pk).update(last_seen=timezone.now() - dt.timedelta(days=3))
    assert running_refresh() == 1 and Finding.objects.get(pk=finding.pk).exposed is False
    assert running_refresh() == 0


def image_sighting(**changes: str) -> Sighting:
    values = {"cluster": "prod", "namespace": "payments", "workload_kind": "Deployment", "workload_name": "api", "team_id": None}
    ref = ImageRef.parse(changes.pop("image", "registry.example.com/team/app0:1.4.1"))
    assert ref is not None
    return Sighting(**{**values, **changes}, image=ref, source="admission")  # type: ignore[arg-type]


def test_a_new_sighting_rescores_the_findings_of_its_image_at_once(finding, django_capture_on_commit_callbacks) -> None:
    ref = f"{finding.image.name}:1.4.1@{DIGEST}"
    with django_capture_on_commit_callbacks(execute=True):
        new = sightings_record(sightings=[image_sighting(image=ref)], now=timezone.now())
    assert new == [finding.image_id]
    assert Finding.objects.get(pk=finding.pk).exposed is True


def test_sightings_of_images_vigil_never_saw_are_not_recorded() -> None:
    assert sightings_record(sightings=[image_sighting(image="registry.example.com/never/seen:1")], now=timezone.now()) == []
    assert WorkloadSighting.objects.count() == 0


def test_a_sighting_is_written_at_most_once_a_minute(finding) -> None:
    ref = f"{finding.image.name}:1.4.1"
    start = timezone.now()
    sightings_record(sightings=[image_sighting(image=ref)], now=start)
    forget_written()  # another process: the statement is sent, and the database leaves the row alone
    sightings_record(sightings=[image_sighting(image=ref)], now=start + dt.timedelta(seconds=30))
    assert WorkloadSighting.objects.get().last_seen == start
    sightings_record(sightings=[image_sighting(image=ref)], now=start + dt.timedelta(seconds=90))
    assert WorkloadSighting.objects.get().last_seen == start + dt.timedelta(seconds=90)


def test_the_same_process_sends_nothing_for_a_sighting_it_wrote_within_the_minute(finding) -> None:
    ref = f"{finding.image.name}:1.4.1"
    sightings_record(sightings=[image_sighting(image=ref)], now=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        sightings_record(sightings=[image_sighting(image=ref)], now=timezone.now())
    assert len(queries.captured_queries) == 0


def test_trivy_operator_reports_record_the_workloads_their_images_run_in() -> None:
    TeamFactory(slug="platform")
    ingest(fixture_bytes("trivy-operator/vulnerabilityreport_many.json"), team="platform")
    sightings = list(WorkloadSighting.objects.values_list("source", "workload_kind", "image__repository"))
    assert sightings and {source for source, *_ in sightings} == {"trivy-operator"}
    assert Finding.objects.filter(kind="vulnerability", exposed=True).exists()


def test_falco_alerts_record_the_pods_their_images_run_in() -> None:
    TeamFactory(slug="platform")
    ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="platform")
    assert set(WorkloadSighting.objects.values_list("source", flat=True)) == {"falco"}


def test_a_runtime_alert_counts_as_running_while_it_is_recent(settings) -> None:
    settings.VIGIL_RUNNING_DAYS = 2
    alert = FindingFactory(stream="runtime", kind="runtime", source="falco", image=None, scope_key="runtime|falco|team:-")
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    old = FindingFactory(stream="runtime", kind="runtime", source="falco", image=None, scope_key="k", last_seen=three_days_ago)
    assert (rescored(alert).exposed, rescored(old).exposed) == (True, False)


def test_the_finding_page_says_where_it_runs(finding) -> None:
    WorkloadSightingFactory(image=finding.image, tag="1.4.1", digest=DIGEST, team=finding.team, workload_name="checkout")
    WorkloadSightingFactory(image=finding.image, tag="1.4.2", digest=OTHER, team=finding.team, workload_name="other-version")
    browser = Client()
    browser.force_login(MembershipFactory(team=finding.team).user)
    page = browser.get(f"/findings/{finding.pk}/").content.decode()
    assert "prod/payments/Deployment/checkout" in page and "other-version" not in page


def test_a_runtime_finding_says_whether_its_image_would_have_been_blocked(finding) -> None:
    ImageVersionFactory(image=finding.image, tag="1.4.1")
    alert = FindingFactory(team=finding.team, image=finding.image, stream="runtime", kind="runtime", source="falco", rule_id="Shell")
    FindingOccurrenceFactory(finding=alert, tag="1.4.1", digest="")
    browser = Client()
    browser.force_login(MembershipFactory(team=finding.team).user)
    warned = browser.get(f"/findings/{alert.pk}/").content.decode()
    assert "would have been blocked" in warned and "CVE-2021-44228" in warned and "mode in" in warned
    EnforcementPolicyFactory(team=finding.team, mode="enforce")
    assert "(if enforced" not in browser.get(f"/findings/{alert.pk}/").content.decode()
    Finding.objects.filter(pk=finding.pk).update(status="false_positive")
    assert "would have passed the current policy" in browser.get(f"/findings/{alert.pk}/").content.decode()
    assert EnforcementPolicy.objects.count() == 1
