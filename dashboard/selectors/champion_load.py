"""Champion load: for each champion, the open and overdue work of their teams, teams without one, and the nudge backlog.

Only the teams the user may read count (a manager sees the teams granted to them, a champion their own).
Four queries whatever the number of teams: the teams, their champions, findings counted per team, nudges per team.
The nudge backlog is what still asks for attention (ACTIVE_NUDGE_STATES): new, opened but not done, or snoozed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Count, Min, Q
from django.utils import timezone

from dashboard.models import ACTIVE_NUDGE_STATES, ACTIVE_STATUSES, Finding, Membership, Nudge, Role, Team
from dashboard.models.access import visible_teams


@dataclasses.dataclass
class TeamLoad:
    team: Team
    champions: list[str] = dataclasses.field(default_factory=list)
    open: int = 0
    overdue: int = 0
    critical_high: int = 0
    nudges: int = 0
    oldest_nudge: dt.datetime | None = None

    @property
    def oldest_nudge_days(self) -> int | None:
        return None if self.oldest_nudge is None else (timezone.now() - self.oldest_nudge).days


@dataclasses.dataclass
class ChampionLoad:
    username: str
    name: str
    teams: list[TeamLoad] = dataclasses.field(default_factory=list)

    @property
    def open(self) -> int:
        return sum(load.open for load in self.teams)

    @property
    def overdue(self) -> int:
        return sum(load.overdue for load in self.teams)

    @property
    def critical_high(self) -> int:
        return sum(load.critical_high for load in self.teams)

    @property
    def nudges(self) -> int:
        return sum(load.nudges for load in self.teams)


@dataclasses.dataclass
class ChampionTable:
    champions: list[ChampionLoad]
    without_champion: list[TeamLoad]


def champion_load(*, user: Any, today: dt.date | None = None) -> ChampionTable:
    today = today or timezone.localdate()
    loads = {team.pk: TeamLoad(team=team) for team in visible_teams(user).order_by("name")}
    champions: dict[str, ChampionLoad] = {}
    memberships = (
        Membership.objects.filter(team_id__in=list(loads), role=Role.CHAMPION, user__is_active=True)
        .select_related("user")
        .order_by("user__username", "team__name")
    )
    for membership in memberships:
        person = membership.user
        load = loads[membership.team_id]
        load.champions.append(person.get_username())
        entry = champions.setdefault(person.get_username(), ChampionLoad(username=person.get_username(), name=person.get_full_name()))
        entry.teams.append(load)
    _count_findings(loads, user=user, today=today)
    _count_nudges(loads)
    ordered = sorted(champions.values(), key=lambda c: (-c.overdue, -c.open, c.username))
    return ChampionTable(champions=ordered, without_champion=[load for load in loads.values() if not load.champions])


def _count_findings(loads: dict[int, TeamLoad], *, user: Any, today: dt.date) -> None:
    rows = (
        Finding.objects.visible_to(user)
        .filter(team_id__in=list(loads), status__in=ACTIVE_STATUSES)
        .order_by()  # the model's ordering must not join the GROUP BY
        .values("team_id")
        .annotate(
            n=Count("id"),
            overdue=Count("id", filter=Q(due_date__lt=today)),
            critical_high=Count("id", filter=Q(severity__in=["critical", "high"])),
        )
    )
    for row in rows:
        load = loads[row["team_id"]]
        load.open, load.overdue, load.critical_high = row["n"], row["overdue"], row["critical_high"]


def _count_nudges(loads: dict[int, TeamLoad]) -> None:
    rows = (
        Nudge.objects.filter(team_id__in=list(loads), state__in=ACTIVE_NUDGE_STATES)
        .order_by()
        .values("team_id")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    for row in rows:
        loads[row["team_id"]].nudges, loads[row["team_id"]].oldest_nudge = row["n"], row["oldest"]


def champion_rows(table: ChampionTable) -> list[list[Any]]:
    """The table as CSV rows (header first): one per champion and team, then the teams without a champion."""
    rows: list[list[Any]] = [["champion", "team", "open", "overdue", "critical_high", "nudge_backlog", "oldest_nudge_days"]]
    for champion in table.champions:
        rows.extend(
            [champion.username, load.team.slug, load.open, load.overdue, load.critical_high, load.nudges, load.oldest_nudge_days]
            for load in champion.teams
        )
    rows.extend(
        ["", load.team.slug, load.open, load.overdue, load.critical_high, load.nudges, load.oldest_nudge_days]
        for load in table.without_champion
    )
    return rows
