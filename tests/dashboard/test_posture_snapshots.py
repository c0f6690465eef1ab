"""Daily posture snapshots: hand-computed figures, and a backfill rebuilding exactly what the live snapshot took."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.utils import timezone

from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_confirm_closures, report_submit
from dashboard.models import DailySnapshot, Finding, FindingEvent, FirstSeenCount, Role, Status
from dashboard.services import triage
from dashboard.services.snapshots import snapshot_take, snapshots_backfill
from dashboard.tasks import take_snapshots
from tests.conftest import fixture_bytes
from tests.factories import EventSightingFactory, FindingEventFactory, FindingFactory, MembershipFactory, ReportFactory, TeamFactory

pytestmark = pytest.mark.django_db

PARIS = "Europe/Paris"
DAY = dt.date(2026, 3, 10)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)), timezone.get_default_timezone())


def frozen(moment: dt.datetime):
    """The frozen clock: django.utils.timezone.now answers ``moment`` (localdate follows)."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def fixed_finding(team, *, severity: str, opened: dt.datetime, fixed: dt.datetime, due: dt.date):
    finding = FindingFactory(team=team, severity=severity, status=Status.FIXED, first_seen=opened, fixed_at=fixed, due_date=due)
    FindingEventFactory(finding=finding, type=FindingEvent.Type.FIXED, from_status=Status.OPEN, to_status=Status.FIXED, created_at=fixed)
    return finding


def open_finding(team, *, severity: str, opened: dt.datetime, due: dt.date | None):
    finding = FindingFactory(team=team, severity=severity, first_seen=opened, due_date=due)
    return finding


def comparable(row: DailySnapshot) -> dict:
    values = model_to_dict(row)
    values.pop("id")
    values.pop("taken_at")
    return values


def all_rows() -> list[dict]:
    return [comparable(row) for row in DailySnapshot.objects.order_by("date", "team_id")]


def first_seen(**filters) -> list[tuple]:
    """The shift-left counts written with the snapshots."""
    rows = FirstSeenCount.objects.filter(**filters).order_by("date", "team_id", "klass", "stream")
    return list(rows.values_list("team_id", "date", "klass", "stream", "n"))


@pytest.fixture
def hand_made(settings):
    """Five findings of one team whose figures on DAY were worked out by hand (comments), in Paris time."""
    settings.TIME_ZONE = PARIS
    team = TeamFactory(slug="payments")
    # Fixed on DAY after 4 days, due in 3 more: within SLA.
    fixed_finding(team, severity="critical", opened=at(DAY - dt.timedelta(days=4), 9), fixed=at(DAY, 9), due=DAY + dt.timedelta(days=3))
    # Fixed on DAY after 10.5 days, 3 days late.
    fixed_finding(team, severity="critical", opened=at(DAY - dt.timedelta(days=10), 9), fixed=at(DAY, 21), due=DAY - dt.timedelta(days=3))
    # Fixed at 00:30 on DAY (Paris; 23:30 the day before in UTC) after 1.5 days: within SLA, counted on DAY.
    two_days_before = DAY - dt.timedelta(days=2)
    fixed_finding(team, severity="high", opened=at(two_days_before, 12, 30), fixed=at(DAY, 0, 30), due=DAY + dt.timedelta(days=28))
    # Open 40 days, 10 days overdue.
    open_finding(team, severity="high", opened=at(DAY - dt.timedelta(days=40), 9), due=DAY - dt.timedelta(days=10))
    # Open since yesterday.
    open_finding(team, severity="medium", opened=at(DAY - dt.timedelta(days=1), 9), due=DAY + dt.timedelta(days=89))
    return team


def test_the_daily_snapshot_counts_what_was_worked_out_by_hand(hand_made) -> None:
    with frozen(at(DAY, 23)):
        take_snapshots()

    row = DailySnapshot.objects.get(team=hand_made, date=DAY)
    assert (row.fixed, row.fixed_with_due, row.fixed_in_sla) == (3, 3, 2)
    assert (row.ttf_n_critical, row.ttf_days_critical, row.ttf_n_high, row.ttf_days_high) == (2, 14.5, 1, 1.5)
    assert row.ttf_median == {"critical": 7.25, "high": 1.5}
    assert row.open_by_severity == {"critical": 0, "high": 1, "medium": 1, "low": 0, "info": 0, "unknown": 0}
    assert row.overdue_by_severity["high"] == 1
    assert row.overdue_total == 1
    assert row.open_by_age == {"0-7": 1, "8-30": 0, "31-90": 1, "91-180": 0, "181+": 0}
    assert row.new == 0
    organisation = DailySnapshot.objects.get(team__isnull=True, date=DAY)
    assert (organisation.fixed, organisation.fixed_in_sla, organisation.open_total, organisation.unowned) == (3, 2, 2, 0)


def test_a_backfill_rebuilds_the_hand_made_day_exactly(hand_made) -> None:
    with frozen(at(DAY, 23)):
        snapshot_take()
    live, live_first_seen = all_rows(), first_seen()
    DailySnapshot.objects.all().delete()
    FirstSeenCount.objects.all().delete()

    with frozen(at(DAY, 23)):
        snapshots_backfill(days=1)

    assert all_rows() == live
    assert first_seen() == live_first_seen


def test_taking_the_snapshot_again_replaces_the_day(hand_made) -> None:
    with frozen(at(DAY, 10)):
        snapshot_take()
    open_finding(hand_made, severity="low", opened=at(DAY, 11), due=None)
    with frozen(at(DAY, 12)):
        snapshot_take()

    row = DailySnapshot.objects.get(team=hand_made, date=DAY)
    assert DailySnapshot.objects.filter(date=DAY).count() == 2
    assert (row.open_low, row.new) == (1, 1)


def test_admission_denials_runtime_alerts_and_stale_images_are_counted_per_day(settings) -> None:
    team = TeamFactory(slug="payments")
    denial = FindingFactory(team=team, stream="admission", kind="policy", source="admission-review", first_seen=at(DAY, 8))
    alert = FindingFactory(team=team, stream="runtime", kind="runtime", source="falco", first_seen=at(DAY, 8))
    for finding, hour in ((denial, 9), (denial, 10), (alert, 11)):
        EventSightingFactory(team=team, finding=finding, seen_at=at(DAY, hour))
    stale = FindingFactory(team=team).image
    ReportFactory(team=team, image=stale, stream="scan", observed_at=at(DAY - dt.timedelta(days=14), 9))
    fresh = FindingFactory(team=team).image
    ReportFactory(team=team, image=fresh, stream="scan", observed_at=at(DAY - dt.timedelta(days=13), 9))

    with frozen(at(DAY, 23)):
        snapshot_take()

    row = DailySnapshot.objects.get(team=team, date=DAY)
    assert (row.admission_denials, row.runtime_alerts, row.stale_images) == (2, 1, 1)


def _ingest(file: str, *, team: str, image: str, when: dt.datetime, champion) -> None:
    with frozen(when):
        report, _ = report_submit(data=fixture_bytes(file), team_slug=team, image=image, observed_at=when, enqueue_now=False)
        processed = report_process(report.pk)
        if processed is not None and processed.held_closures:
            report_confirm_closures(report=processed, user=champion)


def test_a_backfill_equals_the_snapshots_the_beat_task_took_day_by_day(settings) -> None:
    """Real reports over four days: found, fixed by absence, triaged, found again; a snapshot each evening.

    Each evening's rows are kept as the beat task took them (the next day's run rebuilds the past day from
    events, so they are read before it), then everything is rebuilt by the command and compared.
    """
    settings.TIME_ZONE = PARIS
    team = TeamFactory(slug="payments")
    champion = MembershipFactory(team=team, role=Role.CHAMPION).user
    image = "registry.example.com/payments/api:1.0.0"
    days = [DAY + dt.timedelta(days=n) for n in range(4)]
    live: list[dict] = []
    live_first_seen: list[tuple] = []

    def evening(day: dt.date) -> None:
        with frozen(at(day, 23, 30)):
            take_snapshots()
        live.extend(comparable(row) for row in DailySnapshot.objects.filter(date=day).order_by("team_id"))
        live_first_seen.extend(first_seen(date=day))

    _ingest("trivy/scheme_2_many_vulns.json", team="payments", image=image, when=at(days[0], 9), champion=champion)
    evening(days[0])
    _ingest("trivy/trivy-golden_alpine-310_image.json", team="payments", image=image, when=at(days[1], 9), champion=champion)
    evening(days[1])
    some = list(Finding.objects.filter(team=team, status=Status.OPEN).order_by("id").values_list("id", flat=True)[:3])
    with frozen(at(days[2], 10)):
        triage.findings_set_status(ids=some[:1], by=champion, status=Status.FALSE_POSITIVE, reason="not reachable")
        triage.findings_set_status(ids=some[1:], by=champion, status=Status.TRIAGED)
    evening(days[2])
    _ingest("trivy/scheme_2_many_vulns.json", team="payments", image=image, when=at(days[3], 9), champion=champion)
    evening(days[3])
    DailySnapshot.objects.all().delete()
    FirstSeenCount.objects.all().delete()

    with frozen(at(days[3], 23, 30)):
        call_command("backfill_snapshots", "--days", "4")

    rebuilt = all_rows()
    assert [row["date"] for row in rebuilt] == [row["date"] for row in live]
    assert rebuilt == live
    assert first_seen() == live_first_seen
    assert {klass for _, _, klass, _, _ in live_first_seen} >= {"os-package-cves"}
    assert sum(row["fixed"] for row in live) > 0
    assert sum(row["reopened"] for row in live) > 0
    assert sum(row["false_positive"] for row in live) == 2  # the team's row and the organisation's


def test_the_beat_task_rebuilds_yesterday_from_events_once_its_day_is_over(hand_made) -> None:
    with frozen(at(DAY, 12)):
        snapshot_take()
    open_finding(hand_made, severity="low", opened=at(DAY, 18), due=None)  # after the last snapshot of the day

    with frozen(at(DAY + dt.timedelta(days=1), 0, 30)):
        snapshot_take()

    yesterday = DailySnapshot.objects.get(team=hand_made, date=DAY)
    assert (yesterday.open_low, yesterday.new) == (1, 1)
    assert yesterday.taken_at >= at(DAY + dt.timedelta(days=1), 0)


def test_backfill_is_idempotent_and_can_be_limited_to_one_team(hand_made) -> None:
    other = TeamFactory(slug="storefront")
    open_finding(other, severity="low", opened=at(DAY - dt.timedelta(days=3), 9), due=None)
    with frozen(at(DAY, 23)):
        snapshots_backfill(days=5)
        first, counts = all_rows(), first_seen()
        snapshots_backfill(days=5)
        assert (all_rows(), first_seen()) == (first, counts)
        call_command("backfill_snapshots", "--days", "5", "--team", "storefront")

    assert (all_rows(), first_seen()) == (first, counts)
    assert len(counts) == 4  # payments' 3 days with a finding first seen, storefront's 1
    assert DailySnapshot.objects.filter(team=other).count() == 5


def test_the_command_refuses_an_unknown_team_and_a_bad_day_count() -> None:
    with pytest.raises(CommandError, match="no team"):
        call_command("backfill_snapshots", "--team", "nope")
    with pytest.raises(CommandError, match="days must be"):
        call_command("backfill_snapshots", "--days", "0")
