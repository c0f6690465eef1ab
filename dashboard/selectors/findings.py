"""Reads of findings, always through Finding.objects.visible_to(user)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Count, Q, QuerySet

from dashboard.models import ACTIVE_STATUSES, SEVERITY_ORDER, Finding, Image, Kind, Severity, Status, Team

SORTS = {
    "risk": ("-risk_score", "id"),
    "severity": ("-severity_rank", "-risk_score", "id"),
    "due": ("due_date", "-risk_score", "id"),
    "first_seen": ("-first_seen", "id"),
    "last_seen": ("-last_seen", "id"),
}


@dataclasses.dataclass(frozen=True)
class FindingFilters:
    team: str = ""
    image: str = ""
    kind: str = ""
    severity: str = ""
    status: str = ""
    q: str = ""
    sort: str = "risk"

    @classmethod
    def from_query(cls, params: Any) -> FindingFilters:
        def pick(name: str, allowed: list[str] | None = None) -> str:
            value = (params.get(name) or "").strip()[:200]
            if allowed is not None and value not in allowed:
                return ""
            return value

        return cls(
            team=pick("team"),
            image=pick("image"),
            kind=pick("kind", Kind.values),
            severity=pick("severity", Severity.values),
            status=pick("status", [*Status.values, "active"]),
            q=pick("q"),
            sort=pick("sort", list(SORTS)) or "risk",
        )


def finding_list(*, user: Any, filters: FindingFilters) -> QuerySet[Finding]:
    qs = Finding.objects.visible_to(user).select_related("team", "image")
    if filters.team:
        qs = qs.filter(team__isnull=True) if filters.team == "unowned" else qs.filter(team__slug=filters.team)
    if filters.image:
        if filters.image.isdigit():
            qs = qs.filter(image_id=int(filters.image))
        elif "/" in filters.image:
            registry, _, repository = filters.image.partition("/")
            qs = qs.filter(Q(image__registry=registry, image__repository=repository) | Q(image__repository=filters.image))
        else:
            qs = qs.filter(image__repository=filters.image)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.status == "active":
        qs = qs.filter(status__in=ACTIVE_STATUSES)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.q:
        qs = qs.filter(Q(rule_id__icontains=filters.q) | Q(title__icontains=filters.q) | Q(package_name__icontains=filters.q))
    if filters.sort == "severity":
        from django.db.models import Case, IntegerField, Value, When

        qs = qs.annotate(
            severity_rank=Case(
                *[When(severity=s, then=Value(len(SEVERITY_ORDER) - i)) for i, s in enumerate(SEVERITY_ORDER)], output_field=IntegerField()
            )
        )
    return qs.order_by(*SORTS[filters.sort])


def finding_get(*, user: Any, pk: int) -> Finding:
    return Finding.objects.visible_to(user).select_related("team", "image", "assignee", "last_report").get(pk=pk)


def severity_counts(qs: QuerySet[Finding]) -> dict[str, int]:
    counts = dict(qs.filter(status__in=ACTIVE_STATUSES).values_list("severity").annotate(n=Count("id")))
    return {severity: counts.get(severity, 0) for severity in SEVERITY_ORDER}


def team_overview(*, user: Any) -> list[dict[str, Any]]:
    """Every team the user may see, with open findings by severity (one query for all counts)."""
    teams = visible_teams(user=user)
    counts: dict[int | None, dict[str, int]] = {}
    rows = Finding.objects.visible_to(user).filter(status__in=ACTIVE_STATUSES).values("team_id", "severity").annotate(n=Count("id"))
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
    token = getattr(user, "api_token", None)
    if token is not None:
        return Team.objects.filter(pk=token.team_id)
    if user.is_staff or user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user).distinct()


def team_images(*, user: Any, team: Team) -> list[dict[str, Any]]:
    findings = Finding.objects.visible_to(user).filter(team=team, status__in=ACTIVE_STATUSES, image__isnull=False)
    rows = findings.values("image_id", "severity").annotate(n=Count("id"))
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["image_id"], {})[row["severity"]] = row["n"]
    images = Image.objects.filter(Q(team=team) | Q(pk__in=list(counts))).order_by("repository")
    return [
        {
            "image": image,
            "by_severity": {s: counts.get(image.pk, {}).get(s, 0) for s in SEVERITY_ORDER},
            "total": sum(counts.get(image.pk, {}).values()),
        }
        for image in images
    ]
