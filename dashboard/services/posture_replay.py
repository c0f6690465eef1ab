"""Replay findings' event histories into daily posture figures (no ORM: rows in, figures out).

A finding's history is its events in time order.  Each event that names a status (``to_status``) moves the
finding between statuses; severity events change its severity, ownership events its team.  Between two events
the finding is in one *segment* (status, severity, team, due date).  A finding counts as open on day D when an
active segment covers the end of D (its first moment in TIME_ZONE of D + 1), so "open on D" is the state at
midnight; for today, the state now.

Open, overdue and age figures are added as difference arrays over the day range (one +1 and one -1 per
segment), so replaying a year costs one pass over the events, not one pass per day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from dashboard.models.choices import ACTIVE_STATUSES, Status
from dashboard.models.posture import AGE_BUCKETS, TTF_BUCKETS, ttf_bucket

_ACTIVE = frozenset(str(status) for status in ACTIVE_STATUSES)
#: The type of a history's first entry: the finding opened when first seen (read from the finding, not an event).
CREATED = "created"
TeamKey = int | None


@dataclasses.dataclass
class Flows:
    """What happened to one team's findings on one day."""

    new: int = 0
    fixed: int = 0
    reopened: int = 0
    risk_accepted: int = 0
    false_positive: int = 0
    fixed_with_due: int = 0
    fixed_in_sla: int = 0
    ttf: dict[str, list[float]] = dataclasses.field(default_factory=lambda: defaultdict(list))


@dataclasses.dataclass(frozen=True)
class Event:
    at: dt.datetime
    type: str
    to_status: str
    data: dict[str, Any]
    reason: str


@dataclasses.dataclass(frozen=True)
class History:
    """One finding as it is now, and its events (oldest first)."""

    team_id: TeamKey
    severity: str
    status: str
    first_seen: dt.datetime
    due_date: dt.date | None
    kev_due_date: dt.date | None
    events: list[Event]


class Replay:
    """Figures per (team, day) over ``start`` .. ``end`` (inclusive), fed one finding at a time."""

    def __init__(
        self,
        *,
        start: dt.date,
        end: dt.date,
        day_of: Callable[[dt.datetime], dt.date],
        due_for: Callable[[TeamKey, str, dt.date], dt.date | None],
        team_of_slug: Callable[[str], TeamKey],
        restart_sla_on_reopen: bool,
    ) -> None:
        self.start, self.end, self.days = start, end, (end - start).days + 1
        self.day_of, self.due_for, self.team_of_slug = day_of, due_for, team_of_slug
        self.restart = restart_sla_on_reopen
        self.stock: dict[tuple[TeamKey, str, str], list[int]] = {}
        self.flows: dict[tuple[TeamKey, int], Flows] = {}

    # --- stock (open, overdue, age) -------------------------------------------------------------
    def _add(self, key: tuple[TeamKey, str, str], low: int, high: int) -> None:
        low, high = max(low, 0), min(high, self.days)
        if low >= high:
            return
        diff = self.stock.get(key)
        if diff is None:
            diff = self.stock[key] = [0] * (self.days + 1)
        diff[low] += 1
        diff[high] -= 1

    def _index(self, day: dt.date) -> int:
        return (day - self.start).days

    def _segment(self, *, team: TeamKey, severity: str, begin: dt.datetime, until: dt.datetime | None, due: Any, seen: dt.date) -> None:
        low = self._index(self.day_of(begin))
        high = self._index(self.day_of(until)) if until is not None else self.days
        if low >= high:
            return
        self._add((team, "open", severity), low, high)
        if due is not None:
            self._add((team, "overdue", severity), max(low, self._index(due) + 1), high)
        born = self._index(seen)
        for name, lowest, highest in AGE_BUCKETS:
            self._add((team, "age", name), max(low, born + lowest), high if highest is None else min(high, born + highest + 1))

    def daily(self, team: TeamKey, family: str, name: str) -> list[int]:
        """The running sums of one difference array: the figure on each day of the range."""
        diff = self.stock.get((team, family, name))
        if diff is None:
            return [0] * self.days
        values, running = [], 0
        for step in diff[: self.days]:
            running += step
            values.append(running)
        return values

    def teams(self) -> set[TeamKey]:
        return {key[0] for key in self.stock} | {key[0] for key in self.flows}

    # --- flows ---------------------------------------------------------------------------------
    def _flows(self, team: TeamKey, at: dt.datetime) -> Flows | None:
        index = self._index(self.day_of(at))
        if not 0 <= index < self.days:
            return None
        found = self.flows.get((team, index))
        if found is None:
            found = self.flows[(team, index)] = Flows()
        return found

    def _count(self, *, team: TeamKey, event: Event, was_active: bool) -> None:
        flows = self._flows(team, event.at)
        if flows is None:
            return
        if event.type == CREATED:
            flows.new += 1
        elif event.type == "reopened":
            flows.reopened += 1
        if event.to_status == Status.RISK_ACCEPTED:
            flows.risk_accepted += 1
        elif event.to_status == Status.FALSE_POSITIVE:
            flows.false_positive += 1

    def _fixed(self, *, team: TeamKey, severity: str, at: dt.datetime, opened: dt.datetime, due: dt.date | None) -> None:
        flows = self._flows(team, at)
        if flows is None:
            return
        flows.fixed += 1
        flows.ttf[severity].append(max((at - opened).total_seconds(), 0.0) / 86400)
        if due is not None:
            flows.fixed_with_due += 1
            flows.fixed_in_sla += int(self.day_of(at) <= due)

    # --- one finding -------------------------------------------------------------------------
    def _initial(self, history: History) -> tuple[str, TeamKey]:
        severity, team = history.severity, history.team_id
        for event in history.events:
            if event.type == "severity" and event.data.get("from"):
                severity = str(event.data["from"])
                break
        for event in history.events:
            if event.type == "owner" and " → " in event.reason:
                team = self.team_of_slug(event.reason.split(" → ", 1)[0].strip())
                break
        return severity, team

    def add(self, history: History) -> None:
        events = history.events or [Event(history.first_seen, CREATED, Status.OPEN, {}, "")]
        starts = [i for i, event in enumerate(events) if event.to_status in _ACTIVE]
        last_start = starts[-1] if starts else -1
        severity, team = self._initial(history)
        status, since = "", history.first_seen
        opened: dt.datetime | None = None
        due: dt.date | None = None
        seen = self.day_of(history.first_seen)
        for index, event in enumerate(events):
            if status in _ACTIVE:
                self._segment(team=team, severity=severity, begin=since, until=event.at, due=due, seen=seen)
            since = event.at
            if event.type == "severity" and event.data.get("to"):
                severity = str(event.data["to"])
            elif event.type == "owner" and " → " in event.reason:
                team = self.team_of_slug(event.reason.split(" → ", 1)[1].split(":", 1)[0].strip())
            if not event.to_status:
                continue
            was_active, status = status in _ACTIVE, event.to_status
            self._count(team=team, event=event, was_active=was_active)
            if status in _ACTIVE and not was_active:
                opened = event.at
                clock = self.day_of(event.at) if (self.restart and event.type != CREATED) else seen
                due = history.due_date if index == last_start else self.due_for(team, severity, clock)
                if history.kev_due_date is not None and index != last_start and (due is None or history.kev_due_date < due):
                    due = history.kev_due_date
            elif status == Status.FIXED and was_active and opened is not None:
                self._fixed(team=team, severity=severity, at=event.at, opened=opened, due=due)
        if status in _ACTIVE:
            self._segment(team=team, severity=severity, begin=since, until=None, due=due, seen=seen)

    def add_all(self, histories: Iterable[History]) -> None:
        for history in histories:
            self.add(history)


def ttf_summary(ttf: dict[str, list[float]]) -> tuple[dict[str, int], dict[str, float], dict[str, float]]:
    """Per severity: how many fixes, the sum of their days, their median."""
    counts = {severity: len(values) for severity, values in ttf.items() if values}
    sums = {severity: float(sum(values)) for severity, values in ttf.items() if values}
    medians = {severity: round(statistics.median(values), 2) for severity, values in ttf.items() if values}
    return counts, sums, medians


def ttf_histogram(ttf: dict[str, list[float]]) -> list[int]:
    counts = Counter(ttf_bucket(days) for values in ttf.values() for days in values)
    return [counts.get(index, 0) for index in range(len(TTF_BUCKETS) + 1)]
