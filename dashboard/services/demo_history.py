"""What a team has after a few months, on top of the demo's reports (demo.py): threat intelligence, ownership
rules, triage history, risk acceptances (one about to expire, one waiting for a second champion), triage
rules and nudges in several states.  Everything is made through the services a person would use.

The KEV and EPSS snapshots (dashboard/data/demo_kev.json, demo_epss.csv) are rows copied from real files: CISA's
feed, and the KEV and EPSS data Grype itself wrote into the demo's Grype reports (dashboard/data/README.md names
each source).  payments/ledger, whose CycloneDX report carries a CVE in KEV, is seen deployed in payments-prod, so
the toxic combinations view has an exploitable vulnerability running.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES, Finding, Nudge, NudgeState, OwnershipRule, Role, Team
from dashboard.services import finding_updates, intel, nudges, ownership_rules, risk_acceptance, triage_rules
from dashboard.services.running import Sighting, sightings_record
from dashboard.services.teams import membership_set
from scanners.base import ImageRef

DATA = Path(settings.BASE_DIR) / "dashboard" / "data"
DEMO_KEV = DATA / "demo_kev.json"
DEMO_EPSS = DATA / "demo_epss.csv"
#: The demo image deployed now whose report names a CVE in KEV.
DEPLOYED = ImageRef(registry="registry.example.com", repository="payments/ledger", tag="3.1.0", digest="")


def demo_history(*, users: dict[str, Any], teams: dict[str, Team], today: dt.date) -> None:
    """Called once by demo_load, after the reports: the months of work the reports alone do not show."""
    _deployed(team=teams["payments"])
    intel.kev_import(data=DEMO_KEV.read_bytes())  # after the sighting: importing re-scores, exposure included
    intel.epss_import(data=DEMO_EPSS.read_bytes())
    membership_set(user=users["manager"], team=teams["platform"], role=Role.MANAGER, can_triage=True, by=users["admin"])
    _ownership(admin=users["admin"], teams=teams)
    _triage(champion=users["champion"], team=teams["payments"], today=today)
    _four_eyes(champion=users["storefront-champion"], team=teams["storefront"], today=today)
    triage_rules.rule_create(
        by=users["champion"],
        team=teams["payments"],
        name="test fixtures in images",
        action=triage_rules.Action.FALSE_POSITIVE,
        match_path="*/test/*",
        reason="test data shipped in the image, never loaded in production",
    )
    _nudge_states(champion=users["storefront-champion"], team=teams["storefront"])


def _deployed(*, team: Team) -> None:
    """The admission webhook saw payments/ledger:3.1.0 deployed in production this morning."""
    sighting = Sighting(
        cluster="",
        namespace="payments-prod",
        workload_kind="Deployment",
        workload_name="ledger",
        image=DEPLOYED,
        team_id=team.pk,
        source="admission",
    )
    sightings_record(sightings=[sighting], now=timezone.now())


def _ownership(*, admin: Any, teams: dict[str, Team]) -> None:
    for slug in ("payments", "storefront", "platform"):
        ownership_rules.rule_create(
            team=teams[slug],
            kind=OwnershipRule.Kind.IMAGE,
            pattern=f"registry.example.com/{slug}/*",
            note="one registry path per team",
            by=admin,
        )


def _open(team: Team) -> list[Finding]:
    return list(Finding.objects.filter(team=team, status__in=ACTIVE_STATUSES).order_by("-risk_score", "id")[:8])


def _triage(*, champion: Any, team: Team, today: dt.date) -> None:
    """The Payments champion's last weeks: work taken, a comment, a false positive, a risk accepted that
    expires in five days."""
    riskiest = _open(team)
    if len(riskiest) < 5:
        return
    first, second, third, fourth, fifth = riskiest[:5]
    finding_updates.finding_update(
        finding=first,
        by=champion,
        status="in_progress",
        reason="upgrade in the next release",
        set_assignee=True,
        assignee=champion.username,
    )
    finding_updates.finding_update(finding=second, by=champion, status="triaged", reason="reachable from the public API")
    finding_updates.finding_update(finding=second, by=champion, comment="Asked the platform team for a patched base image.")
    finding_updates.finding_update(finding=third, by=champion, status="false_positive", reason="the vulnerable function is not compiled in")
    risk_acceptance.acceptance_request(
        ids=[fourth.pk, fifth.pk],
        by=champion,
        reason="no fix upstream; the service is internal only",
        expires=today + dt.timedelta(days=5),
        team=team,
    )


def _four_eyes(*, champion: Any, team: Team, today: dt.date) -> None:
    """Storefront asks for a second champion on risk acceptances: one request waits."""
    Team.objects.filter(pk=team.pk).update(four_eyes=True)
    team.refresh_from_db()
    riskiest = _open(team)
    if riskiest:
        risk_acceptance.acceptance_request(
            ids=[riskiest[-1].pk], by=champion, reason="compensating WAF rule in place", expires=today + dt.timedelta(days=60), team=team
        )


def _nudge_states(*, champion: Any, team: Team) -> None:
    """Storefront's nudges: one opened, one snoozed, one dismissed; the rest stay new."""
    waiting = list(Nudge.objects.filter(team=team, state=NudgeState.NEW).order_by("created_at", "id")[:3])
    if len(waiting) > 0:
        nudges.nudge_open(nudge=waiting[0], by=champion)
    if len(waiting) > 1:
        nudges.nudge_snooze(nudge=waiting[1], by=champion, days=7)
    if len(waiting) > 2:
        nudges.nudge_dismiss(nudge=waiting[2], by=champion, reason="we covered this in our last team training")
