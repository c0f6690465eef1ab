"""Reads for training nudges: what the rules look at, what people see, and whether nudges helped.

Everything a person sees is scoped by ``visible_teams`` (dashboard/models/access.py).  The rule inputs
(``*_signals``) are per team and unscoped: only services call them, for the team they compute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404

from dashboard.models import (
    ACTIVE_NUDGE_STATES,
    EventSighting,
    Finding,
    FindingEvent,
    FindingOccurrence,
    ImageVersion,
    Membership,
    Nudge,
    NudgeState,
    Report,
    ReportStatus,
    Role,
    Status,
    Team,
)
from dashboard.models.access import sees_everything, visible_teams
from dashboard.selectors.finding_classes import FindingFacts, nudge_classes_for

#: Findings people told us are not real never count towards a nudge.
IGNORED_STATUSES = (Status.FALSE_POSITIVE, Status.DUPLICATE)
_FACTS = {
    "kind": "finding__kind",
    "source": "finding__source",
    "rule_id": "finding__rule_id",
    "title": "finding__title",
    "cwe": "finding__cwe",
    "package_name": "finding__package_name",
    "package_type": "finding__package_type",
    "fixed_version": "finding__fixed_version",
    "resource_kind": "finding__resource_kind",
}


@dataclasses.dataclass(frozen=True)
class Signal:
    """One thing a rule counts: a finding appearing, reopening, being fixed, a denial, an alert, a new image tag."""

    finding_id: int
    at: dt.datetime
    facts: FindingFacts
    #: Where it was seen, in words ("payments/Deployment/api", "registry/payments/api").
    where: str = ""
    #: created | reopened | fixed | denied | alert | new-tag
    event: str = ""
    namespace: str = ""
    cluster: str = ""
    severity: str = ""
    #: The image tag for new-tag signals.
    tag: str = ""
    #: How many events it stands for (a denial's report may count the webhook's repeats: Report.occurrences).
    count: int = 1


def _facts(row: dict[str, Any], prefix: str = "finding__") -> FindingFacts:
    return FindingFacts(
        kind=row[f"{prefix}kind"] or "",
        source=row[f"{prefix}source"] or "",
        rule_id=row[f"{prefix}rule_id"] or "",
        title=row[f"{prefix}title"] or "",
        cwe=tuple(str(c) for c in (row[f"{prefix}cwe"] or []) if c),
        package_name=row[f"{prefix}package_name"] or "",
        package_type=row[f"{prefix}package_type"] or "",
        fixed_version=row[f"{prefix}fixed_version"] or "",
        resource_kind=row[f"{prefix}resource_kind"] or "",
        details_class=row.get("details_class") or "",
        purl=row.get("details_purl") or "",
    )


_WHERE = (
    "finding__resource_namespace",
    "finding__resource_kind",
    "finding__resource_name",
    "finding__image__registry",
    "finding__image__repository",
)


def _where(row: dict[str, Any]) -> str:
    if row.get("finding__resource_name"):
        parts = (row["finding__resource_namespace"], row["finding__resource_kind"], row["finding__resource_name"])
        return "/".join(part for part in parts if part)
    if row.get("finding__image__repository"):
        return "/".join(part for part in (row["finding__image__registry"], row["finding__image__repository"]) if part)
    return ""


def _finding_rows(qs: QuerySet[Any], *extra: str) -> list[dict[str, Any]]:
    return list(
        qs.annotate(
            details_class=KeyTextTransform("class", "finding__details"), details_purl=KeyTextTransform("purl", "finding__details")
        ).values("finding_id", *_FACTS.values(), *_WHERE, "details_class", "details_purl", *extra)
    )


def appearance_signals(*, team_id: int, since: dt.datetime, until: dt.datetime) -> list[Signal]:
    """Findings of the team that appeared (first seen) or came back (reopened) in (since, until]."""
    created = Finding.objects.filter(team_id=team_id, first_seen__gt=since, first_seen__lte=until).exclude(status__in=IGNORED_STATUSES)
    reopened = FindingEvent.objects.filter(
        finding__team_id=team_id, type=FindingEvent.Type.REOPENED, created_at__gt=since, created_at__lte=until
    ).exclude(finding__status__in=IGNORED_STATUSES)
    return [
        Signal(row["finding_id"], row["created_at"], _facts(row), _where(row), row["type"])
        for row in _in_order([*_created_rows(created), *_finding_rows(reopened, "created_at", "type")])
    ]


def _created_rows(findings: QuerySet[Finding], *extra: str) -> list[dict[str, Any]]:
    """The rows ``_finding_rows`` reads from events, of findings appearing: created when first seen.  ``extra``:
    more columns of the finding, named as from an event (``finding__team_id``)."""
    columns = [name.removeprefix("finding__") for name in (*_FACTS.values(), *_WHERE, *extra)]
    rows = findings.annotate(details_class=KeyTextTransform("class", "details"), details_purl=KeyTextTransform("purl", "details")).values(
        "id", "first_seen", "details_class", "details_purl", *columns
    )
    return [
        {
            "finding_id": row["id"],
            "created_at": row["first_seen"],
            "type": "created",
            "details_class": row["details_class"],
            "details_purl": row["details_purl"],
            **{f"finding__{name}": row[name] for name in columns},
        }
        for row in rows
    ]


def _in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Appearances oldest first; at the same moment a finding's creation before a reopening."""
    return sorted(rows, key=lambda row: (row["created_at"], row["type"] != "created", row["finding_id"]))


def fixed_signals(*, team_id: int, since: dt.datetime, until: dt.datetime) -> list[Signal]:
    """Findings of the team that were fixed in (since, until]."""
    qs = FindingEvent.objects.filter(finding__team_id=team_id, type=FindingEvent.Type.FIXED, created_at__gt=since, created_at__lte=until)
    return [
        Signal(row["finding_id"], row["created_at"], _facts(row), _where(row), "fixed")
        for row in _finding_rows(qs.order_by("created_at", "id"), "created_at")
    ]


def denial_signals(*, team_id: int, since: dt.datetime, until: dt.datetime) -> list[Signal]:
    """The admission denials of the team's deploys in (since, until]: a signal per report and finding, counting the
    denials the report stands for."""
    qs = EventSighting.objects.filter(
        team_id=team_id, seen_at__gt=since, seen_at__lte=until, finding__kind="policy", finding__details__allowed=False
    ).exclude(finding__status__in=IGNORED_STATUSES)
    rows = _finding_rows(qs.order_by("seen_at", "id"), "seen_at", "report__occurrences")
    namespace, count = "finding__resource_namespace", "report__occurrences"
    return [
        Signal(r["finding_id"], r["seen_at"], _facts(r), _where(r), "denied", namespace=r[namespace] or "", count=r[count]) for r in rows
    ]


def runtime_signals(*, team_id: int, since: dt.datetime, until: dt.datetime) -> list[Signal]:
    """Runtime alerts of the team last seen in (since, until]."""
    qs = Finding.objects.filter(team_id=team_id, kind="runtime", last_seen__gt=since, last_seen__lte=until).exclude(
        status__in=IGNORED_STATUSES
    )
    rows = qs.order_by("last_seen", "id").values(
        "id",
        "kind",
        "source",
        "rule_id",
        "title",
        "severity",
        "last_seen",
        "resource_namespace",
        "resource_cluster",
        "resource_kind",
        "resource_name",
        "image__registry",
        "image__repository",
    )
    out = []
    for row in rows:
        facts = FindingFacts(kind=row["kind"], source=row["source"], rule_id=row["rule_id"], title=row["title"])
        parts = (row["resource_namespace"], row["resource_kind"], row["resource_name"])
        where = (
            "/".join(p for p in parts if p)
            if row["resource_name"]
            else "/".join(p for p in (row["image__registry"], row["image__repository"]) if p)
        )
        out.append(
            Signal(
                row["id"],
                row["last_seen"],
                facts,
                where,
                "alert",
                namespace=row["resource_namespace"] or "",
                cluster=row["resource_cluster"] or "",
                severity=row["severity"],
            )
        )
    return out


def new_image_signals(*, team_id: int, since: dt.datetime, until: dt.datetime) -> list[Signal]:
    """Vulnerabilities found in image tags first seen in (since, until] (one signal per finding and new tag)."""
    new_tags = set(
        ImageVersion.objects.filter(image__team_id=team_id, first_seen__gt=since, first_seen__lte=until)
        .exclude(tag="")
        .values_list("image_id", "tag")
    )
    if not new_tags:
        return []
    qs = FindingOccurrence.objects.filter(
        finding__team_id=team_id,
        finding__kind="vulnerability",
        finding__image_id__in={image_id for image_id, _ in new_tags},
        tag__in={tag for _, tag in new_tags},
    ).exclude(finding__status__in=IGNORED_STATUSES)
    out = []
    for row in _finding_rows(qs.order_by("first_seen", "id"), "first_seen", "tag", "finding__image_id"):
        if (row["finding__image_id"], row["tag"]) in new_tags:
            out.append(Signal(row["finding_id"], row["first_seen"], _facts(row), _where(row), "new-tag", tag=row["tag"]))
    return out


def team_is_busy(*, team_id: int, now: dt.datetime, hours: int, severities: Sequence[str]) -> bool:
    """An incident the champion is busy with: a runtime alert of these severities in the last ``hours``."""
    if hours <= 0 or not severities:
        return False
    return (
        Finding.objects.filter(
            team_id=team_id,
            kind="runtime",
            severity__in=list(severities),
            last_seen__gt=now - dt.timedelta(hours=hours),
            last_seen__lte=now,
        )
        .exclude(status__in=IGNORED_STATUSES)
        .exists()
    )


# --- what people see ---------------------------------------------------------------------------


def nudge_visible(*, user: Any) -> QuerySet[Nudge]:
    return Nudge.objects.filter(team__in=visible_teams(user)).select_related("team", "topic", "module")


def nudge_list(*, user: Any, team: str = "", state: str = "") -> QuerySet[Nudge]:
    qs = nudge_visible(user=user)
    if team:
        qs = qs.filter(team__slug=team)
    if state == "active":
        qs = qs.filter(state__in=ACTIVE_NUDGE_STATES)
    elif state:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-id")


def nudge_get(*, user: Any, pk: int) -> Nudge:
    nudge = nudge_visible(user=user).filter(pk=pk).first()
    if nudge is None:
        raise Http404("no such nudge")
    return nudge


def nudges_for_panel(*, user: Any, team: Team | None, now: dt.datetime, limit: int = 5) -> list[Nudge]:
    """What the champion's home shows: new and opened nudges, and snoozed ones whose snooze is over
    (of ``team``, or of every team the user can read)."""
    awake = Q(state__in=[NudgeState.NEW, NudgeState.OPENED]) | Q(state=NudgeState.SNOOZED, snooze_until__lte=now)
    qs = nudge_visible(user=user).filter(awake)
    if team is not None:
        qs = qs.filter(team=team)
    return list(qs.order_by("-created_at", "-id")[:limit])


def nudge_findings(*, user: Any, nudge: Nudge, limit: int = 50) -> list[Finding]:
    return list(Finding.objects.visible_to(user).filter(nudges=nudge).select_related("team", "image").order_by("-risk_score", "id")[:limit])


# --- did it help -------------------------------------------------------------------------------


@dataclasses.dataclass
class Window:
    findings: int = 0
    scans: int = 0
    days: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.findings / self.scans, 2) if self.scans else None


@dataclasses.dataclass
class ImpactRow:
    """Findings of a nudge's class per scan, in the window before its completion and after."""

    team: Team
    topic_name: str
    topic_slug: str
    nudges: int
    before: Window
    after: Window
    completed_at: dt.datetime | None = None
    nudge_id: int | None = None

    @property
    def change(self) -> float | None:
        """Relative change of the rate, e.g. -0.75 for "75 % fewer per scan"."""
        if self.before.rate is None or self.after.rate is None or self.before.rate == 0:
            return None
        return round((self.after.rate - self.before.rate) / self.before.rate, 2)

    @property
    def change_percent(self) -> int | None:
        return None if self.change is None else round(self.change * 100)

    @property
    def measuring(self) -> bool:
        """The after-window is not over yet."""
        return self.after.days < self.before.days


def _in(at: dt.datetime, start: dt.datetime, end: dt.datetime) -> bool:
    return start <= at < end


def nudge_impact(*, user: Any, now: dt.datetime, window_days: int = 30, team: Team | None = None) -> list[ImpactRow]:
    """One row per completed nudge: findings of its topic per scan, ``window_days`` before and after completion.

    Findings "appear" when they are created or reopened; scans are the team's processed reports.
    Four queries, whatever the number of nudges.
    """
    done = nudge_visible(user=user).filter(state=NudgeState.DONE, completed_at__isnull=False, completed_at__lte=now)
    if team is not None:
        done = done.filter(team=team)
    nudges = list(done.order_by("completed_at", "id"))
    if not nudges:
        return []
    window = dt.timedelta(days=window_days)
    start = min(n.completed_at for n in nudges if n.completed_at) - window
    end = max(n.completed_at for n in nudges if n.completed_at) + window
    team_ids = {n.team_id for n in nudges}
    keys_by_topic = {n.topic_id: {key.lower() for key in (n.topic.keys or []) if isinstance(key, str)} for n in nudges}
    appearances = _appearances(team_ids, start=start, end=end)
    scans = _scans(team_ids, start=start, end=end)
    return [
        _impact_row(nudge, keys_by_topic[nudge.topic_id], window=window, now=now, appearances=appearances, scans=scans) for nudge in nudges
    ]


_Appearances = dict[int, list[tuple[dt.datetime, int, frozenset[str]]]]


def _appearances(team_ids: set[int], *, start: dt.datetime, end: dt.datetime) -> _Appearances:
    """Per team: when each finding appeared (first seen or reopened) in the range, with its nudge classes."""
    created = Finding.objects.filter(team_id__in=team_ids, first_seen__gte=start, first_seen__lt=end).exclude(status__in=IGNORED_STATUSES)
    reopened = FindingEvent.objects.filter(
        finding__team_id__in=team_ids, type=FindingEvent.Type.REOPENED, created_at__gte=start, created_at__lt=end
    ).exclude(finding__status__in=IGNORED_STATUSES)
    rows = _in_order([*_created_rows(created, "finding__team_id"), *_finding_rows(reopened, "created_at", "type", "finding__team_id")])
    appearances: _Appearances = defaultdict(list)
    for row in rows:
        classes = frozenset(key.lower() for key in nudge_classes_for(_facts(row)))
        appearances[row["finding__team_id"]].append((row["created_at"], row["finding_id"], classes))
    return appearances


def _scans(team_ids: set[int], *, start: dt.datetime, end: dt.datetime) -> dict[int, list[dt.datetime]]:
    """Per team: when each of its processed reports in the range was observed."""
    scans: dict[int, list[dt.datetime]] = defaultdict(list)
    for team_id, observed in Report.objects.filter(
        team_id__in=team_ids, status=ReportStatus.DONE, observed_at__gte=start, observed_at__lt=end
    ).values_list("team_id", "observed_at"):
        scans[team_id].append(observed)
    return scans


def _impact_row(
    nudge: Nudge,
    keys: set[str],
    *,
    window: dt.timedelta,
    now: dt.datetime,
    appearances: _Appearances,
    scans: dict[int, list[dt.datetime]],
) -> ImpactRow:
    completed = nudge.completed_at
    assert completed is not None

    def measure(lo: dt.datetime, hi: dt.datetime) -> Window:
        found = {fid for at, fid, classes in appearances[nudge.team_id] if _in(at, lo, hi) and classes & keys}
        count = sum(1 for at in scans[nudge.team_id] if _in(at, lo, hi))
        return Window(findings=len(found), scans=count, days=(hi - lo).days)

    return ImpactRow(
        team=nudge.team,
        topic_name=nudge.topic.name,
        topic_slug=nudge.topic.slug,
        nudges=1,
        before=measure(completed - window, completed),
        after=measure(completed, min(completed + window, now)),
        completed_at=completed,
        nudge_id=nudge.pk,
    )


def impact_by_topic(rows: Iterable[ImpactRow], *, per_team: bool) -> list[ImpactRow]:
    """Sum the windows of several nudges: per (team, topic), or per topic across teams."""
    groups: dict[tuple[Any, str], ImpactRow] = {}
    for row in rows:
        key = (row.team.pk if per_team else None, row.topic_slug)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ImpactRow(row.team, row.topic_name, row.topic_slug, 0, Window(), Window())
        group.nudges += 1
        group.before = Window(
            group.before.findings + row.before.findings, group.before.scans + row.before.scans, max(group.before.days, row.before.days)
        )
        group.after = Window(
            group.after.findings + row.after.findings, group.after.scans + row.after.scans, max(group.after.days, row.after.days)
        )
    return sorted(groups.values(), key=lambda r: (r.topic_name, r.team.name if per_team else ""))


@dataclasses.dataclass
class EngagementRow:
    team: Team
    champions: list[str]
    nudges: int = 0
    opened: int = 0
    done: int = 0
    dismissed: int = 0
    snoozed: int = 0
    shared: int = 0
    median_hours_to_complete: float | None = None

    @property
    def has_champion(self) -> bool:
        return bool(self.champions)

    @property
    def median_to_done(self) -> str:
        hours = self.median_hours_to_complete
        if hours is None:
            return "—"
        return f"{hours:g} h" if hours < 48 else f"{hours / 24:.1f} days"


def sees_engagement(*, user: Any) -> bool:
    """Managers (and staff) see champion engagement across their teams."""
    return sees_everything(user) or Membership.objects.filter(user=user, role=Role.MANAGER).exists()


def champion_engagement(*, user: Any) -> list[EngagementRow]:
    """Per visible team: its champions, and how its nudges were handled (three queries)."""
    teams = list(visible_teams(user).order_by("name"))
    ids = [team.pk for team in teams]
    champions: dict[int, list[str]] = defaultdict(list)
    for team_id, username in (
        Membership.objects.filter(team_id__in=ids, role=Role.CHAMPION).order_by("user__username").values_list("team_id", "user__username")
    ):
        champions[team_id].append(username)
    rows = {team.pk: EngagementRow(team=team, champions=champions[team.pk]) for team in teams}
    hours: dict[int, list[float]] = defaultdict(list)
    for team_id, state, created, opened, completed, shared in Nudge.objects.filter(team_id__in=ids).values_list(
        "team_id", "state", "created_at", "opened_at", "completed_at", "shared_with_team"
    ):
        row = rows[team_id]
        row.nudges += 1
        row.opened += opened is not None
        row.done += state == NudgeState.DONE
        row.dismissed += state == NudgeState.DISMISSED
        row.snoozed += state == NudgeState.SNOOZED
        row.shared += bool(shared)
        if state == NudgeState.DONE and completed is not None:
            hours[team_id].append((completed - created).total_seconds() / 3600)
    for team_id, values in hours.items():
        rows[team_id].median_hours_to_complete = round(statistics.median(values), 1)
    return list(rows.values())
