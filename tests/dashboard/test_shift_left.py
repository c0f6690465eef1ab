"""Shift left: first-seen counts per team, class and stream, stored with the snapshots and summed for the page.

The counts used to be a JSON document per snapshot ({class: {stream: n}}) summed in Python; they are now one row
per (team, day, class, stream) summed in SQL.  These tests hold the new form to the shares worked out by hand, to
the shares the former computation gives on the same documents, and to a backfill equal to the live snapshots.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from dashboard.models import FirstSeenCount
from dashboard.selectors import posture
from dashboard.selectors.posture_page import STREAMS, shift_left
from dashboard.services import posture_sources as sources
from dashboard.services.snapshots import snapshot_take, snapshots_backfill
from tests.dashboard.test_posture_api import manager_of
from tests.dashboard.test_posture_snapshots import DAY, at, frozen
from tests.factories import FindingEventFactory, FindingFactory, TeamFactory

pytestmark = pytest.mark.django_db

WEEK = posture.Period(DAY - dt.timedelta(days=6), DAY)
SECRET = {"kind": "secret", "source": "trivy", "rule_id": "aws-access-key-id", "package_name": ""}
OS_CVE = {"kind": "vulnerability", "source": "trivy", "package_type": "alpine"}
PRIVILEGED = {"kind": "policy", "source": "kyverno", "rule_id": "disallow-privileged/autogen-privileged", "package_name": ""}
SHELL = {"kind": "runtime", "source": "falco", "rule_id": "Terminal shell in container", "package_name": ""}
NO_CLASS = {"kind": "vulnerability", "source": "trivy", "package_name": "", "package_type": ""}


def found(team, *, stream: str, day: dt.date, n: int = 1, **fields) -> None:
    for _ in range(n):
        finding = FindingFactory(team=team, stream=stream, first_seen=at(day, 8), **fields)
        FindingEventFactory(finding=finding, created_at=at(day, 8))


@pytest.fixture
def hand_built():
    """Two teams' findings over a week and one before it; a finding with a fixed version is in two classes."""
    payments, storefront = TeamFactory(slug="payments", name="Payments"), TeamFactory(slug="storefront", name="Storefront")
    two_days_ago, yesterday = DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1)
    found(payments, stream="scan", day=two_days_ago, n=3, **SECRET)
    found(payments, stream="runtime", day=two_days_ago, **SECRET)
    found(payments, stream="scan", day=yesterday, n=2, fixed_version="1.1.2", **OS_CVE)  # also an outdated base image
    found(payments, stream="admission", day=yesterday, **OS_CVE)
    found(payments, stream="admission", day=DAY, **PRIVILEGED)
    found(payments, stream="scan", day=DAY, **PRIVILEGED)
    found(payments, stream="scan", day=DAY - dt.timedelta(days=10), n=5, **SECRET)  # before the week
    found(storefront, stream="runtime", day=DAY, n=2, **SHELL)
    found(storefront, stream="scan", day=DAY, **NO_CLASS)
    found(None, stream="scan", day=DAY, **SECRET)  # unowned: on no team's page
    with frozen(at(DAY, 22)):
        snapshots_backfill(days=14)
    return payments, storefront


def table(rows) -> list[tuple[str, str, dict[str, int], dict[str, float]]]:
    return [(row.team, row.label, row.counts, row.shares) for row in rows]


def former_shares(documents: dict[tuple[int | None, Any], dict[str, Any]], names: dict[int | None, str]) -> dict[tuple[str, str], dict]:
    """What the page computed from one JSON document per team and day: summed per (team, class), then shares."""
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (team_id, _), streams in documents.items():
        for klass, by_stream in streams.items():
            totals[(names[team_id], klass)].update(by_stream)
    return {key: {s: round(c[s] / sum(c.values()), 4) for s in STREAMS} for key, c in totals.items()}


def test_the_stored_counts_give_the_shares_worked_out_by_hand(client, hand_built) -> None:
    manager_of(*hand_built, client=client)

    with frozen(at(DAY, 22)):
        page = client.get("/posture/shift-left/?days=7")
        export = list(
            csv.reader(io.StringIO(b"".join(client.get("/posture/export.csv?series=shift_left&days=7").streaming_content).decode()))
        )

    assert table(page.context["rows"]) == [
        ("payments", "Secrets in images", {"scan": 3, "runtime": 1}, {"scan": 0.75, "admission": 0.0, "runtime": 0.25}),
        ("payments", "Known CVEs in OS packages", {"scan": 2, "admission": 1}, {"scan": 0.6667, "admission": 0.3333, "runtime": 0.0}),
        ("payments", "Outdated base images", {"scan": 2}, {"scan": 1.0, "admission": 0.0, "runtime": 0.0}),
        ("payments", "Privileged containers", {"admission": 1, "scan": 1}, {"scan": 0.5, "admission": 0.5, "runtime": 0.0}),
        ("storefront", "Shells in containers", {"runtime": 2}, {"scan": 0.0, "admission": 0.0, "runtime": 1.0}),
        ("storefront", "Other", {"scan": 1}, {"scan": 1.0, "admission": 0.0, "runtime": 0.0}),
    ]
    # Every class a finding is in, summed per day: the trend's points.
    assert shift_left(scope=page.context["scope"], period=WEEK)[1] == [
        (DAY - dt.timedelta(days=2), {"runtime": 1, "scan": 3}),
        (DAY - dt.timedelta(days=1), {"admission": 1, "scan": 4}),
        (DAY, {"admission": 1, "runtime": 2, "scan": 2}),
    ]
    assert export[1:3] == [
        ["payments", "Secrets in images", "4", "0.75", "0.0", "0.25"],
        ["payments", "Known CVEs in OS packages", "3", "0.6667", "0.3333", "0.0"],
    ]
    assert b'<td class="num" data-value="0.6667">67%</td>' in page.content


def test_the_stored_counts_give_the_shares_the_former_documents_gave(hand_built) -> None:
    payments, storefront = hand_built
    names = {payments.pk: "payments", storefront.pk: "storefront"}
    # The documents the snapshots used to hold: the findings first seen per team and day, by class and stream.
    first = sources.first_streams(start=WEEK.start, end=WEEK.end)
    documents = {key: streams for key, streams in first.items() if key[0] in names}
    scope = posture.Scope("Both", None, (payments.pk, storefront.pk), False)

    rows, _ = shift_left(scope=scope, period=WEEK)

    assert {(row.team, row.klass): row.shares for row in rows} == former_shares(documents, names)


def test_the_page_reads_the_period_in_two_aggregates_and_the_teams_names(hand_built, django_assert_num_queries) -> None:
    scope = posture.Scope("Organisation", None, (), True)

    with django_assert_num_queries(3) as captured:
        rows, daily = shift_left(scope=scope, period=WEEK)

    assert (len(rows), len(daily)) == (6, 3)
    assert ["GROUP BY" in q["sql"] for q in captured.captured_queries] == [True, False, True]
    assert [q["sql"] for q in captured.captured_queries if '"dashboard_finding"' in q["sql"]] == []


def test_the_live_snapshot_and_the_backfill_write_the_same_counts(hand_built) -> None:
    def stored() -> list[tuple]:
        return list(
            FirstSeenCount.objects.order_by("date", "team_id", "klass", "stream").values_list("team_id", "date", "klass", "stream", "n")
        )

    backfilled = stored()
    FirstSeenCount.objects.all().delete()
    for n in range(14):
        with frozen(at(DAY - dt.timedelta(days=13 - n), 23, 30)):
            snapshot_take()

    assert stored() == backfilled
    assert len(backfilled) == 10


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_every_snapshots_document_into_rows_with_the_same_shares() -> None:
    payments, storefront = TeamFactory(slug="payments"), TeamFactory(slug="storefront")
    documents = {
        (payments.pk, DAY - dt.timedelta(days=1)): {"secrets-in-images": {"scan": 3, "runtime": 1}, "privileged": {"admission": 2}},
        (payments.pk, DAY): {"secrets-in-images": {"scan": 1}, "other": {"runtime": 1}},
        (storefront.pk, DAY): {"shell-in-container": {"runtime": 4}, "os-package-cves": {"scan": 5, "admission": 1}},
    }
    executor = MigrationExecutor(connection)
    before, after = [("dashboard", "0002_postgresql")], executor.loader.graph.leaf_nodes("dashboard")
    executor.migrate(before)
    try:
        old = MigrationExecutor(connection).loader.project_state(before).apps.get_model("dashboard", "DailySnapshot")
        for (team_id, day), streams in documents.items():
            old.objects.create(team_id=team_id, date=day, taken_at=at(day, 23), first_streams=streams)
        old.objects.create(team_id=None, date=DAY, taken_at=at(DAY, 23), first_streams={"secrets-in-images": {"scan": 99}})
    finally:
        MigrationExecutor(connection).migrate(after)
    scope = posture.Scope("Both", None, (payments.pk, storefront.pk), False)

    rows, daily = shift_left(scope=scope, period=WEEK)

    assert {(row.team, row.klass): row.shares for row in rows} == former_shares(
        documents, {payments.pk: "payments", storefront.pk: "storefront"}
    )
    assert FirstSeenCount.objects.count() == 8
    assert daily == [
        (DAY - dt.timedelta(days=1), {"admission": 2, "runtime": 1, "scan": 3}),
        (DAY, {"admission": 1, "runtime": 5, "scan": 6}),
    ]
