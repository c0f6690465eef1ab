"""The posture API's count of what is active now, kept by PostgreSQL's triggers, equals a live count of the
findings after every kind of write: ingest (new, fixed by absence, reopened), runtime alerts, triage, risk
acceptance, bulk ORM updates, a team's deletion, deleting findings, and the hourly fold."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Count
from django.utils import timezone

from dashboard.db.active_counts import active_counts_fold
from dashboard.models import ACTIVE_STATUSES, SNAPSHOT_SEVERITIES, ActiveFindingDelta, Finding, Role, Status, Team
from dashboard.selectors.posture import Scope, open_now
from dashboard.services.risk_acceptance import acceptance_request
from dashboard.services.triage import findings_set_status
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.usefixtures("require_postgres")

IMAGE = "registry.example.com/payments/api:1.2.0"


def live(team_ids: tuple[int, ...] | None) -> dict[str, int]:
    active = Finding.objects.filter(status__in=ACTIVE_STATUSES).order_by()
    if team_ids is not None:
        active = active.filter(team_id__in=team_ids)
    counts = dict(active.values_list("severity").annotate(n=Count("id")))
    return {severity: counts.get(severity, 0) for severity in SNAPSHOT_SEVERITIES}


def assert_exact() -> None:
    """The organisation (unowned included) and every team, counted both ways."""
    assert open_now(scope=Scope("org", None, (), True)) == live(None)
    for team_id in Team.objects.values_list("id", flat=True):
        assert open_now(scope=Scope("team", None, (team_id,), False)) == live((team_id,))


@pytest.fixture
def teams():
    payments, storefront = TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    champion = MembershipFactory(team=payments, role=Role.CHAMPION).user
    return payments, storefront, champion


def test_ingest_of_scans_and_runtime_alerts_keeps_the_count_exact(teams) -> None:
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image=IMAGE)
    assert_exact()
    ingest(fixture_bytes("trivy/scheme_2_no_vuln.json"), team="payments", image=IMAGE)  # fixes by absence
    assert_exact()
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image=IMAGE)  # reopens
    ingest(fixture_bytes("trivy/kubernetes.json"), team="storefront")
    ingest(fixture_bytes("falco/falco_alerts_array.json"))
    assert_exact()
    assert sum(live(None).values()) > 0


def test_triage_acceptance_and_bulk_updates_keep_the_count_exact(teams) -> None:
    payments, storefront, champion = teams
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image=IMAGE)
    ids = list(Finding.objects.filter(team=payments).order_by("id").values_list("id", flat=True))

    findings_set_status(ids=ids[:2], by=champion, status=Status.FALSE_POSITIVE, reason="not reachable")
    findings_set_status(ids=ids[2:4], by=champion, status=Status.TRIAGED)
    assert_exact()
    acceptance_request(ids=ids[4:6], by=champion, reason="mitigated by the WAF", expires=timezone.localdate() + dt.timedelta(days=30))
    findings_set_status(ids=ids[:1], by=champion, status=Status.OPEN, reason="reachable after all")
    assert_exact()
    Finding.objects.filter(pk__in=ids[6:10]).update(team=storefront)
    Finding.objects.filter(pk__in=ids[10:12]).update(severity="low")
    assert_exact()


def test_deletes_and_the_hourly_fold_keep_the_count_exact(teams) -> None:
    payments, storefront, _ = teams
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image=IMAGE)
    ingest(fixture_bytes("trivy/kubernetes.json"), team="storefront")
    Finding.objects.filter(pk__in=Finding.objects.filter(team=payments).order_by("id").values("id")[:3]).delete()
    storefront.delete()  # its findings become unowned
    assert_exact()

    rows = active_counts_fold()

    assert rows == ActiveFindingDelta.objects.count() <= len(SNAPSHOT_SEVERITIES) * 2
    assert_exact()


def test_the_posture_api_reads_no_finding_in_a_pinned_number_of_queries(teams, client, django_assert_max_num_queries) -> None:
    payments, storefront, _ = teams
    ingest(fixture_bytes("trivy/scheme_2_many_vulns.json"), team="payments", image=IMAGE)
    manager = MembershipFactory(team=payments, role=Role.MANAGER).user
    MembershipFactory(user=manager, team=storefront, role=Role.MANAGER)
    client.force_login(manager)

    with django_assert_max_num_queries(6) as captured:
        body = client.get("/api/v1/posture/?days=365").json()
    listed = client.get("/api/v1/findings/?team=payments&status=active").json()["count"]

    assert [q["sql"] for q in captured.captured_queries if '"dashboard_finding"' in q["sql"]] == []
    assert sum(body["summary"]["open"].values()) == listed > 0
