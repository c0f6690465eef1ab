from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from dashboard.models import DailySnapshot, Image, Report, Team
from dashboard.selectors.findings import visible_teams


def team_get(*, user: Any, slug: str) -> Team:
    team = visible_teams(user=user).filter(slug=slug).first()
    if team is None:
        raise Http404("no such team")
    return team


def image_get(*, user: Any, pk: int) -> Image:
    from dashboard.models import Finding

    image = Image.objects.select_related("team").filter(pk=pk).first()
    if image is None:
        raise Http404("no such image")
    if user.is_staff or user.is_superuser:
        return image
    allowed = visible_teams(user=user)
    if image.team_id is not None and allowed.filter(pk=image.team_id).exists():
        return image
    if Finding.objects.visible_to(user).filter(image=image).exists():
        return image
    raise Http404("no such image")


def snapshots_for(*, user: Any, team: Team | None = None, days: int = 90) -> QuerySet[DailySnapshot]:
    teams = visible_teams(user=user)
    qs = DailySnapshot.objects.filter(team__in=teams)
    if team is not None:
        qs = qs.filter(team=team)
    return qs.order_by("date")


def report_list(*, user: Any) -> QuerySet[Report]:
    # The list shows counts and held closures; the finding ids behind "unchanged" stay in the database.
    qs = Report.objects.select_related("team", "image").defer("unchanged_ids", "scopes")
    if user.is_staff or user.is_superuser:
        return qs
    return qs.filter(team__in=visible_teams(user=user))


def report_get(*, user: Any, pk: Any) -> Report:
    token = getattr(user, "api_token", None)
    if token is not None:
        report = Report.objects.filter(pk=pk, team_id__in=token.team_ids()).first()
    else:
        report = report_list(user=user).filter(pk=pk).first()
    if report is None:
        raise Http404("no such report")
    return report
