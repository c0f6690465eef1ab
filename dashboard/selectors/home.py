"""The champion's home: what needs attention today, each with a count and a link to the queue."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES, Finding, Report, RiskAcceptance, Status, Stream, Team
from dashboard.models.access import sees_everything
from dashboard.selectors.acceptances import acceptances_decidable, acceptances_visible
from dashboard.selectors.findings import DUE_SOON_DAYS, reopened_since
from dashboard.selectors.queue import capped_count
from dashboard.selectors.report_outcomes import reports_waiting
from dashboard.selectors.stale_images import StaleImage, stale_images_of

#: Risk acceptances expiring within this many days are shown.
EXPIRING_DAYS = 14
#: The home page's worklist: this many of the riskiest findings needing work.
WORKLIST_SIZE = 10
#: Admission denials and runtime alerts seen within this many days are "recent".
RECENT_DAYS = 7


@dataclasses.dataclass
class HomeCard:
    key: str
    label: str
    count: int
    #: The count stopped at the queue's cap (shown as "10000+").
    capped: bool
    query: dict[str, str]
    hint: str = ""
    urgent: bool = False


@dataclasses.dataclass
class HomeSummary:
    since: dt.datetime
    team: Team | None
    teams: list[Team]
    cards: list[HomeCard]
    to_approve: list[RiskAcceptance]
    waiting: list[RiskAcceptance]
    expired_recently: int
    #: Reports holding closures for a person to confirm.
    held_waiting: list[Report] = dataclasses.field(default_factory=list)
    #: The riskiest findings that need work, first.
    worklist: list[Finding] = dataclasses.field(default_factory=list)
    #: The scope's images not scanned for STALE_DAYS or more (selectors/stale_images.py).
    stale_images: list[StaleImage] = dataclasses.field(default_factory=list)


def home_summary(*, user: Any, since: dt.datetime, team: Team | None, teams: list[Team], today: dt.date | None = None) -> HomeSummary:
    """Counts for the user's teams (or one team), each a capped count that walks an index."""
    today = today or timezone.localdate()
    since = since.replace(microsecond=0)  # the card's link carries whole seconds
    findings = _findings_in_scope(user=user, team=team, teams=teams)
    active = findings.filter(status__in=ACTIVE_STATUSES)
    acceptances = acceptances_visible(user=user, team=team)
    pending = list(
        acceptances.filter(state=RiskAcceptance.State.PENDING)
        .select_related("team", "requested_by")
        .annotate(n=Count("findings"))
        .order_by("created_at")[:50]
    )
    me = getattr(user, "pk", None)
    decidable = acceptances_decidable(user=user, acceptances=pending)
    return HomeSummary(
        since=since,
        team=team,
        teams=teams,
        cards=_cards(user=user, since=since, team=team, findings=findings, acceptances=acceptances, today=today),
        to_approve=[a for a in pending if a.pk in decidable],
        waiting=[a for a in pending if a.requested_by_id == me],
        expired_recently=acceptances.filter(
            state=RiskAcceptance.State.EXPIRED, expires__gte=today - dt.timedelta(days=RECENT_DAYS)
        ).count(),
        held_waiting=list(reports_waiting(user=user, team=team)),
        worklist=list(active.select_related("team", "image", "assignee").order_by("-risk_score", "id")[:WORKLIST_SIZE]),
        stale_images=stale_images_of(team_ids=_team_ids(user=user, team=team, teams=teams), today=today),
    )


def _findings_in_scope(*, user: Any, team: Team | None, teams: list[Team]) -> QuerySet[Finding]:
    findings = Finding.objects.visible_to(user)
    if team is not None:
        return findings.filter(team=team)
    if not sees_everything(user):
        return findings.filter(team_id__in=[t.pk for t in teams])  # literal ids: per-team index scans
    return findings


def _team_ids(*, user: Any, team: Team | None, teams: list[Team]) -> list[int] | None:
    """The teams the home page speaks for (None: every team, for someone who sees everything)."""
    if team is not None:
        return [team.pk]
    return None if sees_everything(user) else [t.pk for t in teams]


def _counts(*, user: Any, since: dt.datetime, active: QuerySet[Finding], today: dt.date) -> dict[str, tuple[int, bool]]:
    recent = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    wanted = {
        "new": active.filter(first_seen__gte=since),
        "new_critical": active.filter(first_seen__gte=since, severity="critical"),
        "reopened": reopened_since(active, since),
        "due_soon": active.filter(due_date__gte=today, due_date__lte=today + dt.timedelta(days=DUE_SOON_DAYS)),
        "overdue": active.filter(due_date__lt=today),
        "denials": active.filter(stream=Stream.ADMISSION, last_seen__gte=recent),
        "alerts": active.filter(stream=Stream.RUNTIME, last_seen__gte=recent),
        "mine": active.filter(assignee_id=getattr(user, "pk", None)) if getattr(user, "pk", None) else active.none(),
    }
    return {key: capped_count(qs) for key, qs in wanted.items()}


def _cards(
    *, user: Any, since: dt.datetime, team: Team | None, findings: QuerySet[Finding], acceptances: Any, today: dt.date
) -> list[HomeCard]:
    counts = _counts(user=user, since=since, active=findings.filter(status__in=ACTIVE_STATUSES), today=today)
    expiring_soon = acceptances.filter(
        state=RiskAcceptance.State.APPROVED, expires__gte=today, expires__lte=today + dt.timedelta(days=EXPIRING_DAYS)
    )
    expiring_findings = capped_count(findings.filter(status=Status.RISK_ACCEPTED, pk__in=expiring_soon.values("findings")))
    scoped = {"team": team.slug} if team is not None else {}
    since_text = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M:%S")
    return [*_attention_cards(counts, scoped, since_text), *_stream_cards(counts, scoped, expiring_findings)]


def _attention_cards(counts: dict[str, tuple[int, bool]], scoped: dict[str, str], since_text: str) -> list[HomeCard]:
    new_critical = counts["new_critical"][0]
    return [
        HomeCard(
            "new",
            "New since your last visit",
            *counts["new"],
            {**scoped, "since": since_text, "status": "active"},
            hint=f"{new_critical} critical" if new_critical else "",
            urgent=bool(new_critical),
        ),
        HomeCard(
            "reopened",
            "Reopened since your last visit",
            *counts["reopened"],
            {**scoped, "reopened_since": since_text, "status": "active"},
            hint="fixed before, reported again",
            urgent=bool(counts["reopened"][0]),
        ),
        HomeCard("overdue", "Overdue", *counts["overdue"], {**scoped, "sla": "overdue", "sort": "due"}, urgent=bool(counts["overdue"][0])),
        HomeCard("due_soon", f"Due in the next {DUE_SOON_DAYS} days", *counts["due_soon"], {**scoped, "sla": "due_soon", "sort": "due"}),
    ]


def _stream_cards(counts: dict[str, tuple[int, bool]], scoped: dict[str, str], expiring: tuple[int, bool]) -> list[HomeCard]:
    return [
        HomeCard(
            "expiring",
            f"Risk acceptances expiring in {EXPIRING_DAYS} days",
            *expiring,
            {**scoped, "expiring": str(EXPIRING_DAYS), "status": Status.RISK_ACCEPTED},
            hint="findings that reopen at expiry",
        ),
        HomeCard(
            "denials",
            f"Admission denials ({RECENT_DAYS} days)",
            *counts["denials"],
            {**scoped, "stream": Stream.ADMISSION, "seen_days": str(RECENT_DAYS), "status": "active"},
            hint="deploys blocked by policy",
        ),
        HomeCard(
            "alerts",
            f"Runtime alerts ({RECENT_DAYS} days)",
            *counts["alerts"],
            {**scoped, "stream": Stream.RUNTIME, "seen_days": str(RECENT_DAYS), "status": "active"},
            urgent=bool(counts["alerts"][0]),
        ),
        HomeCard("mine", "Assigned to you", *counts["mine"], {**scoped, "assignee": "me", "status": "active"}),
    ]
