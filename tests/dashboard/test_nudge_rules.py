"""Each nudge rule, and the gentle limits around them, with a frozen clock passed in as ``now``."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.models import FindingEvent, Nudge, NudgeRule, NudgeState
from dashboard.services.nudge_rules import NudgeConfig, parse_quiet_hours
from dashboard.services.nudges import nudges_compute
from tests.factories import (
    EventSightingFactory,
    FindingEventFactory,
    FindingFactory,
    FindingOccurrenceFactory,
    ImageFactory,
    ImageVersionFactory,
    NudgeFactory,
    ReportFactory,
    TeamFactory,
    TopicFactory,
    TrainingModuleFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # a Wednesday
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
CONFIG = NudgeConfig()
TOPICS = [
    ("root-containers", "Containers running as root", ["vigil:root-container"], False),
    ("resource-limits", "Resource requests and limits", ["vigil:missing-limits"], False),
    ("linux-capabilities", "Linux capabilities", ["vigil:capabilities"], False),
    ("mutable-tags", "Mutable image tags", ["vigil:mutable-tags"], False),
    ("shell-in-container", "Shells in containers", ["vigil:shell-in-container"], True),
    ("outdated-base-images", "Outdated base images", ["vigil:outdated-base-image"], False),
    ("os-package-cves", "Known CVEs in OS packages", ["vigil:os-package-cves"], False),
]


@pytest.fixture
def team():
    return TeamFactory(slug="payments", name="Payments")


@pytest.fixture
def topics():
    made = {slug: TopicFactory(slug=slug, name=name, keys=keys, urgent=urgent) for slug, name, keys, urgent in TOPICS}
    for topic in made.values():
        TrainingModuleFactory(slug=f"{topic.slug}-read", title=f"Read about {topic.name}", topics=[topic], rank=10)
        TrainingModuleFactory(slug=f"{topic.slug}-course", title=f"Course on {topic.name}", topics=[topic], rank=20)
    return made


def appeared(team, rule_id, at, *, kind="misconfiguration", name="api", **fields):
    """A finding of the team that appeared (first seen) at ``at``."""
    finding = FindingFactory(
        team=team,
        kind=kind,
        source=fields.pop("source", "trivy"),
        rule_id=rule_id,
        package_name=fields.pop("package_name", ""),
        resource_namespace="payments",
        resource_kind="Deployment",
        resource_name=name,
        first_seen=at,
        last_seen=at,
        status_changed_at=at,
        **fields,
    )
    return finding


def alert(team, rule_id, at, *, namespace="payments", severity="low"):
    return FindingFactory(
        team=team,
        kind="runtime",
        source="falco",
        stream="runtime",
        rule_id=rule_id,
        title=rule_id,
        package_name="",
        severity=severity,
        resource_namespace=namespace,
        resource_kind="Pod",
        resource_name="api",
        first_seen=at,
        last_seen=at,
        status_changed_at=at,
    )


def made(team):
    return list(Nudge.objects.filter(team=team).order_by("topic__slug").values_list("topic__slug", "rule", "findings_count"))


# --- repeated class ----------------------------------------------------------------------------


def test_the_same_class_three_times_in_two_weeks_makes_one_nudge_with_its_findings_and_reason(team, topics) -> None:
    first = appeared(team, "KSV012", NOW - 13 * DAY, name="api")
    second = appeared(team, "KSV020", NOW - 2 * DAY, name="worker")
    third = appeared(team, "DS002", NOW - HOUR, name="", kind="misconfiguration")

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert len(nudges) == 1
    nudge = nudges[0]
    assert (nudge.topic.slug, nudge.rule, nudge.state, nudge.findings_count) == ("root-containers", NudgeRule.REPEATED_CLASS, "new", 3)
    assert set(nudge.findings.values_list("pk", flat=True)) == {first.pk, second.pk, third.pk}
    assert nudge.reason == (
        "“Containers running as root” came up 3 times in your team's reports in the last 14 days, "
        "for example KSV012 on payments/Deployment/api."
    )
    assert nudge.module.slug == "root-containers-read"
    assert (nudge.created_at, nudge.period) == (NOW, dt.date(2026, 11, 23))


def test_two_in_the_window_or_a_third_outside_it_is_not_enough(team, topics) -> None:
    appeared(team, "KSV012", NOW - 15 * DAY, name="old")
    appeared(team, "KSV012", NOW - 2 * DAY, name="api")
    appeared(team, "KSV012", NOW - DAY, name="worker")

    assert nudges_compute(now=NOW, teams=[team], config=CONFIG) == []


def test_false_positives_do_not_count(team, topics) -> None:
    appeared(team, "KSV011", NOW - 3 * DAY, name="a")
    appeared(team, "KSV016", NOW - 2 * DAY, name="b")
    appeared(team, "KSV018", NOW - DAY, name="c", status="false_positive")

    assert nudges_compute(now=NOW, teams=[team], config=CONFIG) == []


def test_thresholds_and_windows_come_from_settings(team, topics, settings) -> None:
    settings.VIGIL_NUDGES = {"repeated_class_threshold": 2, "repeated_class_window_days": 3}
    appeared(team, "KSV011", NOW - 2 * DAY, name="a")
    appeared(team, "KSV016", NOW - DAY, name="b")

    nudges_compute(now=NOW, teams=[team])

    assert made(team) == [("resource-limits", NudgeRule.REPEATED_CLASS, 2)]


# --- reappeared after a fix --------------------------------------------------------------------


def test_a_finding_that_reopens_after_its_fix_makes_a_nudge(team, topics) -> None:
    finding = appeared(team, "KSV013", NOW - 40 * DAY)
    FindingEventFactory(finding=finding, type=FindingEvent.Type.FIXED, to_status="fixed", created_at=NOW - 20 * DAY)
    FindingEventFactory(finding=finding, type=FindingEvent.Type.REOPENED, created_at=NOW - DAY)

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert made(team) == [("mutable-tags", NudgeRule.REAPPEARED, 1)]
    assert nudges[0].reason == (
        "“Mutable image tags” is back: 1 finding turned up again after your team had fixed this kind of problem, "
        "for example KSV013 on payments/Deployment/api."
    )


def test_a_new_misconfiguration_of_a_class_fixed_before_counts_but_a_new_cve_does_not(team, topics) -> None:
    fixed = appeared(team, "KSV003", NOW - 60 * DAY, name="old")
    FindingEventFactory(finding=fixed, type=FindingEvent.Type.FIXED, to_status="fixed", created_at=NOW - 30 * DAY)
    appeared(team, "KSV022", NOW - DAY, name="new")
    old_cve = appeared(team, "CVE-2020-1", NOW - 60 * DAY, kind="vulnerability", package_name="zlib", package_type="alpine", name="x")
    FindingEventFactory(finding=old_cve, type=FindingEvent.Type.FIXED, to_status="fixed", created_at=NOW - 30 * DAY)
    appeared(team, "CVE-2024-2", NOW - DAY, kind="vulnerability", package_name="zlib", package_type="alpine", name="y")

    nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert made(team) == [("linux-capabilities", NudgeRule.REAPPEARED, 1)]


# --- admission denials --------------------------------------------------------------------------


def denial(team, policy, *, allowed=False):
    return FindingFactory(
        team=team,
        kind="policy",
        source="admission-review",
        stream="admission",
        rule_id=f"{policy}/validate",
        package_name="",
        resource_namespace="payments",
        resource_kind="Pod",
        resource_name="api",
        details={"allowed": allowed},
    )


def test_the_same_policy_denying_three_deploys_in_a_week_makes_a_nudge(team, topics) -> None:
    finding = denial(team, "disallow-latest-tag")
    EventSightingFactory(finding=finding, seen_at=NOW - 6 * DAY)
    EventSightingFactory(finding=finding, seen_at=NOW - 2 * DAY)
    EventSightingFactory(finding=finding, seen_at=NOW - HOUR)

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert made(team) == [("mutable-tags", NudgeRule.REPEATED_DENIALS, 1)]
    assert nudges[0].reason == (
        "The admission policy “disallow-latest-tag” turned away your team's deploys 3 times in the last 7 days, "
        "for example payments/Pod/api."
    )


def test_denials_counted_by_one_report_count_each(team, topics) -> None:
    finding = denial(team, "disallow-latest-tag")
    EventSightingFactory(finding=finding, seen_at=NOW - HOUR)
    EventSightingFactory(finding=finding, seen_at=NOW - HOUR, report=ReportFactory(team=team, occurrences=2))

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert (made(team), "3 times" in nudges[0].reason) == ([("mutable-tags", NudgeRule.REPEATED_DENIALS, 1)], True)


def test_two_denials_in_the_week_or_warnings_are_not_enough(team, topics) -> None:
    denied = denial(team, "disallow-latest-tag")
    EventSightingFactory(finding=denied, seen_at=NOW - 8 * DAY)
    EventSightingFactory(finding=denied, seen_at=NOW - 2 * DAY)
    EventSightingFactory(finding=denied, seen_at=NOW - HOUR)
    warned = denial(team, "require-image-tag", allowed=True)
    EventSightingFactory(finding=warned, seen_at=NOW - 3 * DAY)
    EventSightingFactory(finding=warned, seen_at=NOW - 2 * DAY)
    EventSightingFactory(finding=warned, seen_at=NOW - DAY)

    assert nudges_compute(now=NOW, teams=[team], config=CONFIG) == []


# --- runtime alerts in production ---------------------------------------------------------------


def test_one_runtime_alert_in_production_is_enough(team, topics) -> None:
    shell = alert(team, "Terminal shell in container", NOW - 5 * HOUR)

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert made(team) == [("shell-in-container", NudgeRule.RUNTIME_IN_PRODUCTION, 1)]
    assert list(nudges[0].findings.values_list("pk", flat=True)) == [shell.pk]
    assert nudges[0].reason == "Falco saw “Terminal shell in container” in production (payments/Pod/api) in the last 7 days."


def test_runtime_alerts_outside_production_or_older_than_the_window_are_ignored(team, topics) -> None:
    alert(team, "Terminal shell in container", NOW - HOUR, namespace="payments-staging")
    alert(team, "Terminal shell in container", NOW - 8 * DAY, namespace="prod")

    assert nudges_compute(now=NOW, teams=[team], config=CONFIG) == []


def test_a_critical_alert_is_an_incident_nothing_is_nudged_until_it_is_a_day_old(team, topics) -> None:
    alert(team, "Terminal shell in container", NOW - 3 * HOUR, severity="critical")

    during = nudges_compute(now=NOW, teams=[team], config=CONFIG)
    after = nudges_compute(now=NOW + 22 * HOUR, teams=[team], config=CONFIG)

    assert during == []
    assert [(n.topic.slug, n.created_at) for n in after] == [("shell-in-container", NOW + 22 * HOUR)]


# --- a new image from an outdated base ----------------------------------------------------------


def os_vulnerability(team, image, cve, tag, *, fixed="1.2.3-r1", seen=NOW - DAY):
    finding = FindingFactory(
        team=team, image=image, rule_id=cve, package_name="openssl", package_type="alpine", fixed_version=fixed, first_seen=NOW - 90 * DAY
    )
    FindingOccurrenceFactory(finding=finding, tag=tag, first_seen=seen)
    return finding


def test_a_new_image_tag_with_three_fixable_os_vulnerabilities_makes_a_nudge(team, topics) -> None:
    image = ImageFactory(team=team, registry="registry.example.com", repository="payments/api")
    ImageVersionFactory(image=image, tag="1.4.0", first_seen=NOW - 2 * DAY)
    os_vulnerability(team, image, "CVE-2024-1", "1.4.0")
    os_vulnerability(team, image, "CVE-2024-2", "1.4.0")
    os_vulnerability(team, image, "CVE-2024-3", "1.4.0")
    os_vulnerability(team, image, "CVE-2024-4", "1.4.0", fixed="")

    nudges = nudges_compute(now=NOW, teams=[team], config=CONFIG)

    assert made(team) == [("outdated-base-images", NudgeRule.OUTDATED_BASE, 3)]
    assert nudges[0].reason == (
        "The new image registry.example.com/payments/api:1.4.0 starts from a base with 3 OS-package vulnerabilities "
        "that already have fixes: rebuilding on a current base image removes them in one go."
    )


def test_an_image_tag_first_seen_before_the_window_is_not_new(team, topics) -> None:
    image = ImageFactory(team=team)
    ImageVersionFactory(image=image, tag="1.3.0", first_seen=NOW - 10 * DAY)
    os_vulnerability(team, image, "CVE-2024-1", "1.3.0")
    os_vulnerability(team, image, "CVE-2024-2", "1.3.0")
    os_vulnerability(team, image, "CVE-2024-3", "1.3.0")

    assert nudges_compute(now=NOW, teams=[team], config=CONFIG) == []


# --- gentle: weekly limit, cool-down, quiet hours, idempotency ---------------------------------


def three_classes(team, at):
    for rule_id, name in (("KSV012", "a"), ("KSV020", "b"), ("KSV021", "c")):
        appeared(team, rule_id, at, name=f"root-{name}")
    for rule_id, name in (("KSV011", "a"), ("KSV015", "b"), ("KSV016", "c"), ("KSV018", "d")):
        appeared(team, rule_id, at, name=f"limits-{name}")
    for rule_id, name in (("KSV003", "a"), ("KSV022", "b"), ("KSV106", "c"), ("KSV119", "d"), ("KSV004", "e")):
        appeared(team, rule_id, at, name=f"caps-{name}")


def test_at_most_two_nudges_a_week_the_rest_waits_for_next_week(team, topics) -> None:
    three_classes(team, NOW - HOUR)

    first = nudges_compute(now=NOW, teams=[team], config=CONFIG)
    next_day = nudges_compute(now=NOW + DAY, teams=[team], config=CONFIG)
    next_week = nudges_compute(now=NOW + 7 * DAY, teams=[team], config=CONFIG)

    assert [n.topic.slug for n in first] == ["linux-capabilities", "resource-limits"]
    assert next_day == []
    assert [n.topic.slug for n in next_week] == ["root-containers"]


def test_running_twice_at_once_creates_nothing_new(team, topics) -> None:
    three_classes(team, NOW - HOUR)
    alert(team, "Terminal shell in container", NOW - HOUR)

    first = nudges_compute(now=NOW, teams=[team], config=NudgeConfig(per_week=10))
    second = nudges_compute(now=NOW, teams=[team], config=NudgeConfig(per_week=10))

    assert len(first) == 4
    assert second == []
    assert Nudge.objects.count() == 4


def test_a_topic_rests_for_the_cool_down_after_a_nudge_and_longer_after_a_dismissal(team, topics) -> None:
    NudgeFactory(team=team, topic=topics["root-containers"], state=NudgeState.DONE, created_at=NOW - 20 * DAY)
    NudgeFactory(
        team=team, topic=topics["resource-limits"], state=NudgeState.DISMISSED, created_at=NOW - 60 * DAY, dismissed_at=NOW - 40 * DAY
    )
    three_classes(team, NOW - HOUR)

    assert [n.topic.slug for n in nudges_compute(now=NOW, teams=[team], config=CONFIG)] == ["linux-capabilities"]
    assert [n.topic.slug for n in nudges_compute(now=NOW + 9 * DAY, teams=[team], config=CONFIG)] == ["root-containers"]


def test_a_second_nudge_on_a_topic_points_to_a_module_the_team_has_not_seen(team, topics) -> None:
    NudgeFactory(
        team=team,
        topic=topics["root-containers"],
        state=NudgeState.DONE,
        created_at=NOW - 40 * DAY,
        module=topics["root-containers"].modules.get(slug="root-containers-read"),
    )
    three_classes(team, NOW - HOUR)

    nudges_compute(now=NOW, teams=[team], config=NudgeConfig(per_week=5))

    assert Nudge.objects.get(team=team, topic__slug="root-containers", state="new").module.slug == "root-containers-course"


def test_quiet_hours_make_nothing_until_they_end(team, topics) -> None:
    three_classes(team, NOW - 2 * DAY)
    quiet = NudgeConfig(quiet_hours=(22, 7))

    at_night = nudges_compute(now=NOW.replace(hour=23), teams=[team], config=quiet)
    at_dawn = nudges_compute(now=(NOW + DAY).replace(hour=6, minute=59), teams=[team], config=quiet)
    morning = nudges_compute(now=(NOW + DAY).replace(hour=7), teams=[team], config=quiet)

    assert (at_night, at_dawn, len(morning)) == ([], [], 2)


def test_a_snoozed_nudge_wakes_up_when_its_snooze_ends(team, topics) -> None:
    nudge = NudgeFactory(
        team=team, topic=topics["root-containers"], state=NudgeState.SNOOZED, created_at=NOW - 10 * DAY, snooze_until=NOW - HOUR
    )

    nudges_compute(now=NOW, teams=[team], config=CONFIG)

    nudge.refresh_from_db()
    assert (nudge.state, nudge.snooze_until) == ("new", None)


def test_teams_are_computed_separately(team, topics) -> None:
    other = TeamFactory(slug="storefront")
    three_classes(other, NOW - HOUR)

    nudges_compute(now=NOW, config=CONFIG)

    assert made(team) == []
    assert [slug for slug, _, _ in made(other)] == ["linux-capabilities", "resource-limits"]


def test_quiet_hours_parse_and_wrap_around_midnight() -> None:
    config = NudgeConfig.from_settings({"quiet_hours": "22-7", "per_week": "3"})

    assert (config.quiet_hours, config.per_week) == ((22, 7), 3)
    assert [config.is_quiet(hour) for hour in (21, 22, 0, 6, 7)] == [False, True, True, True, False]
    assert parse_quiet_hours("") is None
    with pytest.raises(ValueError, match="hours 0-23"):
        parse_quiet_hours("22-25")


def test_production_is_anything_not_named_like_a_test_environment() -> None:
    assert [
        CONFIG.is_production(namespace=namespace, cluster=cluster)
        for namespace, cluster in (("payments", ""), ("payments-dev", ""), ("shop", "eks-staging-eu"), ("", ""), ("latest", "prod"))
    ] == [True, False, False, True, True]
