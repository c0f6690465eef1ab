"""End to end: real reports ingested over simulated weeks, the nudges they make, and whether they helped.

Timeline for team Payments (W1 = Monday 7 September 2026), with the default rules (at most 2 nudges in
any 7 days, 28 days of cool-down per topic, 3 of a class in 14 days, 3 denials in 7 days):

- W1 Mon   a trivy-operator config audit (13 checks on one ReplicaSet: 4 about resource limits, 3 about
           running as root) and a Trivy scan of a new image tag, alpine 3.10 with 4 fixable OS-package CVEs.
           Four candidates; the weekly limit keeps two: outdated base image (the more pressing rule),
           resource limits (4 findings; ties broken by topic).  Thursday: nothing, the week's two are made.
- W2 Mon   the other two fit in the rolling week: OS-package CVEs, root containers.  On Friday the
           champion completes the resource-limits and the OS-package-CVE nudges.
- W3 Mon   a Trivy Kubernetes scan: 10 new Debian CVEs, but OS-package CVEs are cooling down (without
           the cool-down they would be nudged again); the other classes stay under 3.  Tue-Thu: the same
           Kyverno denial three times; the third ingest nudges at once (urgent rules run on ingest).
- W4 Tue   Falco alerts, one critical: an incident, so no nudge on ingest.  Wednesday: the most severe
           runtime class in production (one left in this rolling week).  W5 Mon: the next one.

Did it help (hand-computed)?  Both completed W2 Fri.  Resource limits: 30 days before, 4 findings over 2
reports = 2.0 per scan; 30 days after, KSV011 on 2 deployments over 5 reports (W3 scan, 3 denials, Falco)
= 0.4 per scan: -80 %.  OS-package CVEs: 4 over 2 = 2.0 before, 10 over 5 = 2.0 after: no change.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from dashboard.models import Nudge, NudgeRule
from dashboard.selectors.nudges import impact_by_topic, nudge_impact
from dashboard.services.nudge_rules import NudgeConfig
from dashboard.services.nudges import nudge_complete, nudges_compute
from dashboard.services.training import training_load
from tests.conftest import fixture_bytes
from tests.dashboard.ingest_helpers import ingest
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

W1 = dt.datetime(2026, 9, 7, 9, 0, tzinfo=dt.UTC)  # a Monday
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def topics(nudges):
    return [(n.topic.slug, n.rule, n.findings_count) for n in nudges]


def test_a_sequence_of_real_reports_over_weeks_makes_exactly_these_nudges_and_measures_their_effect() -> None:
    training_load()
    team = TeamFactory(slug="payments", name="Payments")
    champion = UserFactory(username="champion")
    MembershipFactory(user=champion, team=team, role="champion")

    # Week 1
    ingest(fixture_bytes("trivy-operator/configauditreport_many.json"), team="payments", observed_at=W1)
    ingest(
        fixture_bytes("trivy/trivy-golden_alpine-310_image.json"),
        team="payments",
        image="registry.example.com/payments/api:1.0.0",
        observed_at=W1 + 5 * 60 * dt.timedelta(seconds=1),
    )
    week1 = nudges_compute(now=W1 + HOUR)
    week1_thursday = nudges_compute(now=W1 + 3 * DAY)

    # Week 2
    week2 = nudges_compute(now=W1 + 7 * DAY + HOUR)
    completed_at = W1 + 11 * DAY + 3 * HOUR
    nudge_complete(nudge=Nudge.objects.get(topic__slug="resource-limits"), by=champion, shared_with_team=True, now=completed_at)
    nudge_complete(nudge=Nudge.objects.get(topic__slug="os-package-cves"), by=champion, now=completed_at)

    # Week 3
    ingest(fixture_bytes("trivy/kubernetes.json"), team="payments", observed_at=W1 + 14 * DAY)
    week3 = nudges_compute(now=W1 + 14 * DAY + HOUR)
    with transaction.atomic():
        without_cooldown = nudges_compute(now=W1 + 14 * DAY + HOUR, config=NudgeConfig(cooldown_days=0))
        without_cooldown_topics = topics(without_cooldown)
        transaction.set_rollback(True)
    on_ingest = []
    for day in (15, 16, 17):
        ingest(fixture_bytes("admission-review/denied_pod_kyverno.json"), team="payments", observed_at=W1 + day * DAY)
        on_ingest.append(topics(Nudge.objects.filter(created_at=W1 + day * DAY)))

    # Week 4
    ingest(fixture_bytes("falco/falcosidekick_webhook_payloads.jsonl"), team="payments", observed_at=W1 + 22 * DAY)
    during_incident = topics(Nudge.objects.filter(created_at__gte=W1 + 22 * DAY))
    week4 = nudges_compute(now=W1 + 23 * DAY + 2 * HOUR)
    week5 = nudges_compute(now=W1 + 28 * DAY + 2 * HOUR)

    assert topics(week1) == [("outdated-base-images", NudgeRule.OUTDATED_BASE, 4), ("resource-limits", NudgeRule.REPEATED_CLASS, 4)]
    assert week1_thursday == []
    assert topics(week2) == [("os-package-cves", NudgeRule.REPEATED_CLASS, 4), ("root-containers", NudgeRule.REPEATED_CLASS, 3)]
    assert week3 == []
    assert without_cooldown_topics == [("os-package-cves", NudgeRule.REPEATED_CLASS, 10)]
    assert on_ingest == [[], [], [("mutable-tags", NudgeRule.REPEATED_DENIALS, 1)]]
    assert during_incident == []
    assert topics(week4) == [("container-drift", NudgeRule.RUNTIME_IN_PRODUCTION, 1)]
    assert topics(week5) == [("linux-capabilities", NudgeRule.RUNTIME_IN_PRODUCTION, 1)]
    assert Nudge.objects.count() == 7

    rows = nudge_impact(user=champion, now=W1 + 60 * DAY)
    measured = [
        (r.topic_slug, r.before.findings, r.before.scans, r.before.rate, r.after.findings, r.after.scans, r.after.rate, r.change)
        for r in rows
    ]
    assert measured == [
        ("resource-limits", 4, 2, 2.0, 2, 5, 0.4, -0.8),
        ("os-package-cves", 4, 2, 2.0, 10, 5, 2.0, 0.0),
    ]
    across_teams = impact_by_topic(rows, per_team=False)
    assert [(r.topic_slug, r.nudges, r.before.rate, r.after.rate, r.change_percent) for r in across_teams] == [
        ("os-package-cves", 1, 2.0, 2.0, 0),
        ("resource-limits", 1, 2.0, 0.4, -80),
    ]
