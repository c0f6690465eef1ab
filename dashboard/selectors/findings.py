"""Reads of findings, always through Finding.objects.visible_to(user)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from dashboard.models import (
    ACTIVE_STATUSES,
    SEVERITY_ORDER,
    Finding,
    FindingEvent,
    Image,
    Kind,
    RiskAcceptance,
    Severity,
    Status,
    Stream,
    Team,
)
from dashboard.models import access as access_rule
from dashboard.selectors.report_outcomes import OUTCOMES, outcome_filter
from dashboard.selectors.stale_images import days_unscanned, last_scans

#: A finding due within this many days is "due soon" (the same as dashboard.services.risk.DUE_SOON_DAYS).
DUE_SOON_DAYS = 7

SORTS: dict[str, tuple[Any, ...]] = {
    "risk": ("-risk_score", "id"),
    "severity": ("-severity_rank", "-risk_score", "id"),
    "due": (F("due_date").asc(nulls_last=True), "id"),
    "first_seen": ("-first_seen", "id"),
    "last_seen": ("-last_seen", "id"),
}
SLA_STATES = ("overdue", "due_soon", "on_track", "none")
YES_NO = ("yes", "no")
_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
_DIFF_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
#: At most this many layers in one ``base_layer`` filter (a base image rarely has more than a handful).
MAX_BASE_LAYERS = 20
#: The result class Trivy gives OS packages (``details["class"]``), as opposed to language packages.
OS_PACKAGES = "os-pkgs"


def _csv(value: str, allowed: list[str]) -> str:
    """A comma-separated choice ("critical,high"), keeping only allowed words, in their given order."""
    words = [word.strip() for word in value.split(",") if word.strip() in allowed]
    return ",".join(dict.fromkeys(words))


def _number(value: str, *, low: float, high: float, integer: bool = False) -> str:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        return ""
    return value if low <= number <= high else ""


def _diff_ids(value: str) -> str:
    """Comma-separated layer DiffIDs (``sha256:`` + 64 hex digits), keeping only well-formed ones, in order."""
    words = [word.strip() for word in value.split(",") if _DIFF_ID.match(word.strip())]
    return ",".join(dict.fromkeys(words[:MAX_BASE_LAYERS]))


def _moment(value: str) -> dt.datetime | None:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        parsed = dt.datetime.combine(day, dt.time()) if day else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


@dataclasses.dataclass(frozen=True)
class FindingFilters:
    """The queue's filters, exactly as they appear in the URL (so a view can be bookmarked and shared)."""

    team: str = ""
    image: str = ""
    kind: str = ""
    source: str = ""
    stream: str = ""
    #: One severity or several, comma-separated.
    severity: str = ""
    #: "active" (needs work), one status, or several comma-separated.
    status: str = ""
    #: overdue, due_soon (next 7 days), on_track, none.
    sla: str = ""
    fix: str = ""
    kev: str = ""
    #: EPSS probability at or above this (0 to 1).
    epss_min: str = ""
    #: Deployed or alerting at runtime.
    exposed: str = ""
    #: A username, "me", or "none".
    assignee: str = ""
    q: str = ""
    #: First seen at or after this moment (ISO date or datetime): "new since".
    since: str = ""
    #: Reopened (fixed, then reported again) at or after this moment.
    reopened_since: str = ""
    #: Last seen within this many days.
    seen_days: str = ""
    #: Covered by risk acceptance #N.
    acceptance: str = ""
    #: Risk accepted under an acceptance that expires within this many days.
    expiring: str = ""
    #: OS-package findings whose package came in one of these layers (comma-separated DiffIDs): a base image's.
    base_layer: str = ""
    #: Fixed at or after this moment (ISO date or datetime): "fixed this period".
    fixed_since: str = ""
    #: The findings of report ID (a UUID), with ``outcome`` (new, reopened, unchanged, fixed, held) or any.
    report: str = ""
    outcome: str = ""
    sort: str = "risk"

    @classmethod
    def from_query(cls, params: Any) -> FindingFilters:
        def pick(name: str, allowed: list[str] | tuple[str, ...] | None = None) -> str:
            value = (params.get(name) or "").strip()[:200]
            if allowed is not None and value not in allowed:
                return ""
            return value

        assignee = pick("assignee")
        since = pick("since")
        fixed_since = pick("fixed_since")
        reopened_since = pick("reopened_since")
        return cls(
            team=pick("team"),
            image=pick("image"),
            kind=pick("kind", Kind.values),
            source=pick("source"),
            stream=pick("stream", Stream.values),
            severity=_csv(pick("severity"), Severity.values),
            status=_csv(pick("status"), [*Status.values, "active"]),
            sla=pick("sla", SLA_STATES),
            fix=pick("fix", YES_NO),
            kev=pick("kev", YES_NO),
            epss_min=_number(pick("epss_min"), low=0.0, high=1.0),
            exposed=pick("exposed", YES_NO),
            assignee=assignee if _USERNAME.match(assignee) else "",
            q=pick("q"),
            since=since if since and _moment(since) else "",
            reopened_since=reopened_since if reopened_since and _moment(reopened_since) else "",
            seen_days=_number(pick("seen_days"), low=1, high=3650, integer=True),
            acceptance=pick("acceptance") if pick("acceptance").isdigit() else "",
            expiring=_number(pick("expiring"), low=0, high=3650, integer=True),
            base_layer=_diff_ids((params.get("base_layer") or "")[: 80 * MAX_BASE_LAYERS]),
            fixed_since=fixed_since if fixed_since and _moment(fixed_since) else "",
            report=pick("report"),
            outcome=pick("outcome", OUTCOMES),
            sort=pick("sort", list(SORTS)) or "risk",
        )

    def replace(self, **changes: str) -> FindingFilters:
        return dataclasses.replace(self, **changes)

    def as_query(self) -> dict[str, str]:
        """The non-default filters, for links and the hidden "everything matching" field."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return {name: value for name, value in values.items() if value and not (name == "sort" and value == "risk")}

    @property
    def any_set(self) -> bool:
        """Any filter beyond the queue's default ("needs work", by risk)?"""
        return any(not (name == "status" and value == "active") for name, value in self.as_query().items() if name != "sort")


def finding_list(*, user: Any, filters: FindingFilters, today: dt.date | None = None) -> QuerySet[Finding]:
    """Findings the user may see, filtered and ordered as the queue shows them."""
    qs: QuerySet[Finding] = Finding.objects.visible_to(user).select_related("team", "image", "assignee")
    qs = _narrow_to_teams(qs, user=user, team=filters.team)
    qs = apply_filters(qs, user=user, filters=filters.replace(team=""), today=today or timezone.localdate())
    return qs.order_by(*SORTS[filters.sort])


def _narrow_to_teams(qs: QuerySet[Finding], *, user: Any, team: str) -> QuerySet[Finding]:
    """Name the teams as literal ids (on top of visible_to), so PostgreSQL walks the per-team indexes in queue order.

    One small query; without it the planner sees "team in (a subquery)" and sorts every matching row.
    """
    if team == "unowned":
        return qs.filter(team__isnull=True)
    if not team and access_rule.sees_everything(user):
        return qs  # staff also see unowned findings: nothing to narrow
    teams = visible_teams(user=user)
    if team:
        teams = teams.filter(slug=team)
    return qs.filter(team_id__in=list(teams.values_list("id", flat=True)))


def apply_filters(qs: QuerySet[Finding], *, user: Any, filters: FindingFilters, today: dt.date) -> QuerySet[Finding]:
    """The queue's filters, in one order: where, status and SLA, facts and people, text, times and reports."""
    qs = _where_filters(qs, filters)
    qs = _status_filters(qs, filters, today)
    qs = _fact_filters(qs, user=user, filters=filters)
    return _time_filters(qs, filters, today)


def _where_filters(qs: QuerySet[Finding], filters: FindingFilters) -> QuerySet[Finding]:
    if filters.team:
        qs = qs.filter(team__isnull=True) if filters.team == "unowned" else qs.filter(team__slug=filters.team)
    if filters.image:
        if filters.image.isdigit():
            qs = qs.filter(image_id=int(filters.image))
        elif filters.image.replace(",", "").isdigit():  # several images by id ("3,7"): a base image's images
            qs = qs.filter(image_id__in=[int(part) for part in filters.image.split(",") if part])
        elif "/" in filters.image:
            registry, _, repository = filters.image.partition("/")
            qs = qs.filter(Q(image__registry=registry, image__repository=repository) | Q(image__repository=filters.image))
        else:
            qs = qs.filter(image__repository=filters.image)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.stream:
        qs = qs.filter(stream=filters.stream)
    if filters.severity:
        qs = qs.filter(severity__in=filters.severity.split(","))
    return qs


def _status_filters(qs: QuerySet[Finding], filters: FindingFilters, today: dt.date) -> QuerySet[Finding]:
    statuses = set(filters.status.split(",")) if filters.status else set()
    if "active" in statuses:
        statuses = (statuses - {"active"}) | set(ACTIVE_STATUSES)
    if statuses:
        qs = qs.filter(status__in=sorted(statuses))
    return _sla_filter(qs, filters.sla, today)


def _fact_filters(qs: QuerySet[Finding], *, user: Any, filters: FindingFilters) -> QuerySet[Finding]:
    if filters.fix:
        qs = qs.exclude(fixed_version="") if filters.fix == "yes" else qs.filter(fixed_version="")
    if filters.kev:
        qs = qs.filter(kev=filters.kev == "yes")
    if filters.epss_min:
        qs = qs.filter(epss__gte=float(filters.epss_min))
    if filters.exposed:
        qs = qs.filter(exposed=filters.exposed == "yes")
    if filters.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee == "me":
        qs = qs.filter(assignee_id=getattr(user, "pk", None)) if getattr(user, "pk", None) else qs.none()
    elif filters.assignee:
        qs = qs.filter(assignee__username=filters.assignee)
    return qs


def _time_filters(qs: QuerySet[Finding], filters: FindingFilters, today: dt.date) -> QuerySet[Finding]:
    """Text, moments, acceptances, base layers and reports."""
    if filters.q:
        qs = qs.filter(search_text__icontains=filters.q)  # rule id, title and package (Finding.search_text)
    if filters.since:
        qs = qs.filter(first_seen__gte=_moment(filters.since))
    if filters.fixed_since:
        qs = qs.filter(fixed_at__gte=_moment(filters.fixed_since))
    if filters.reopened_since:
        qs = reopened_since(qs, _moment(filters.reopened_since))  # type: ignore[arg-type]
    if filters.seen_days:
        qs = qs.filter(last_seen__gte=timezone.now() - dt.timedelta(days=int(filters.seen_days)))
    if filters.acceptance:
        qs = qs.filter(risk_acceptances__id=int(filters.acceptance))
    if filters.expiring:
        expiring = RiskAcceptance.objects.filter(
            state=RiskAcceptance.State.APPROVED, expires__lte=today + dt.timedelta(days=int(filters.expiring))
        ).values("findings")
        qs = qs.filter(status=Status.RISK_ACCEPTED, pk__in=expiring)
    if filters.base_layer:
        qs = qs.filter(os_package_q(), details__layer_diff_id__in=filters.base_layer.split(","))
    if filters.report:
        qs = qs.filter(outcome_filter(report=filters.report, outcome=filters.outcome))
    return qs


def reopened_since(qs: QuerySet[Finding], moment: dt.datetime) -> QuerySet[Finding]:
    """Findings reopened at or after ``moment``.  Reopening sets ``status_changed_at``, so only findings changed
    since then are looked at, each by its own events (the finding, created_at index)."""
    reopened = FindingEvent.objects.filter(finding=OuterRef("pk"), type=FindingEvent.Type.REOPENED, created_at__gte=moment)
    return qs.filter(status_changed_at__gte=moment).filter(Exists(reopened))


def os_package_q() -> Q:
    """Vulnerabilities of OS packages (Trivy's ``os-pkgs`` results), which a base image brings."""
    return Q(kind=Kind.VULNERABILITY, details__class=OS_PACKAGES)


def _sla_filter(qs: QuerySet[Finding], state: str, today: dt.date) -> QuerySet[Finding]:
    soon = today + dt.timedelta(days=DUE_SOON_DAYS)
    if state == "overdue":
        return qs.filter(status__in=ACTIVE_STATUSES, due_date__lt=today)
    if state == "due_soon":
        return qs.filter(status__in=ACTIVE_STATUSES, due_date__gte=today, due_date__lte=soon)
    if state == "on_track":
        return qs.filter(status__in=ACTIVE_STATUSES, due_date__gt=soon)
    if state == "none":
        return qs.filter(Q(due_date__isnull=True) | ~Q(status__in=ACTIVE_STATUSES))
    return qs


def finding_get(*, user: Any, pk: int) -> Finding:
    return Finding.objects.visible_to(user).select_related("team", "image", "assignee", "last_report").get(pk=pk)


def severity_counts(qs: QuerySet[Finding]) -> dict[str, int]:
    """Active findings of ``qs`` by severity.

    ``order_by()`` first: a queryset's ordering columns (the queue's sort, risk score and id) would
    otherwise join the GROUP BY and every group would be one finding.
    """
    counts = dict(qs.filter(status__in=ACTIVE_STATUSES).order_by().values_list("severity").annotate(n=Count("id")))
    return {severity: counts.get(severity, 0) for severity in SEVERITY_ORDER}


def team_overview(*, user: Any) -> list[dict[str, Any]]:
    """Every team the user may see, with open findings by severity (one query for all counts)."""
    teams = visible_teams(user=user)
    counts: dict[int | None, dict[str, int]] = {}
    rows = (
        Finding.objects.visible_to(user).filter(status__in=ACTIVE_STATUSES).order_by().values("team_id", "severity").annotate(n=Count("id"))
    )
    for row in rows:
        counts.setdefault(row["team_id"], {})[row["severity"]] = row["n"]
    out = []
    for team in teams:
        by_severity = {s: counts.get(team.pk, {}).get(s, 0) for s in SEVERITY_ORDER}
        out.append({"team": team, "by_severity": by_severity, "total": sum(by_severity.values())})
    return out


def unowned_count(*, user: Any) -> int:
    if not (user.is_staff or user.is_superuser):
        return 0
    return Finding.objects.visible_to(user).filter(team__isnull=True, status__in=ACTIVE_STATUSES).count()


def visible_teams(*, user: Any) -> QuerySet[Team]:
    """The teams the user may read: the one access rule (dashboard/models/access.py)."""
    return access_rule.visible_teams(user)


def team_images(*, user: Any, team: Team) -> list[dict[str, Any]]:
    findings = Finding.objects.visible_to(user).filter(team=team, status__in=ACTIVE_STATUSES, image__isnull=False)
    rows = findings.order_by().values("image_id", "severity").annotate(n=Count("id"))
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["image_id"], {})[row["severity"]] = row["n"]
    images = list(Image.objects.filter(Q(team=team) | Q(pk__in=list(counts))).order_by("repository"))
    scans = last_scans(image.pk for image in images)
    return [
        {
            "image": image,
            "by_severity": {s: counts.get(image.pk, {}).get(s, 0) for s in SEVERITY_ORDER},
            "total": sum(counts.get(image.pk, {}).values()),
            "last_scan": scans.get(image.pk),
            "stale_days": days_unscanned(scans.get(image.pk)),
        }
        for image in images
    ]
