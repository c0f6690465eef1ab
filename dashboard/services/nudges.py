"""Making nudges, gently, and what champions do with them.

``nudges_compute`` runs the rules (``nudge_rules.py``) for each team and keeps only what a busy team
can take: at most ``per_week`` nudges in any 7 days, none on a topic in its cool-down or still open,
none during quiet hours or while the team has an incident (a critical runtime alert in the last
``busy_hours``).  It is idempotent: a (team, topic, week) has at most one nudge, and a topic that just
got a nudge is in cool-down, so running it again at once creates nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dashboard.errors import ApplicationError
from dashboard.ingest.apply import EVENT_FORMATS
from dashboard.ingest.publish import TASKS
from dashboard.models import EventSighting, Finding, Nudge, NudgeRule, NudgeState, Report, ReportStatus, Team
from dashboard.selectors import nudges as signals
from dashboard.selectors.access import can_triage
from dashboard.selectors.training import TopicInfo, topic_catalogue
from dashboard.services import nudge_rules
from dashboard.services.nudge_rules import Candidate, NudgeConfig

logger = logging.getLogger(__name__)

COMPUTE_TASK = TASKS.COMPUTE_NUDGES
DIGEST_TASK = TASKS.WEEKLY_DIGEST
MAX_REASON = 2000
#: Offered in the page when a champion dismisses a nudge (they may also write their own).
DISMISS_REASONS = ("We already know this", "Not relevant to our stack", "These findings are not ours", "Bad timing, ask again later")
#: Offered snooze lengths, in days.
SNOOZE_DAYS = (1, 7, 14)


def week_start(day: dt.date) -> dt.date:
    """Monday of the ISO week of ``day``."""
    return day - dt.timedelta(days=day.weekday())


def _local(now: dt.datetime) -> dt.datetime:
    return timezone.localtime(now)


def _candidates(*, team: Team, now: dt.datetime, config: NudgeConfig, topics: dict[int, TopicInfo], urgent_only: bool) -> list[Candidate]:
    days = dt.timedelta(days=1)
    found: list[Candidate] = []
    alerts = signals.runtime_signals(team_id=team.pk, since=now - config.runtime_window_days * days, until=now)
    found += nudge_rules.runtime_in_production(alerts, topics, config)
    denials = signals.denial_signals(team_id=team.pk, since=now - config.denials_window_days * days, until=now)
    found += nudge_rules.repeated_denials(denials, topics, config)
    if not urgent_only:
        window = max(config.repeated_class_window_days, config.reappeared_window_days)
        appearances = signals.appearance_signals(team_id=team.pk, since=now - window * days, until=now)
        recent = [s for s in appearances if s.at > now - config.repeated_class_window_days * days]
        found += nudge_rules.repeated_class(recent, topics, config)
        back = [s for s in appearances if s.at > now - config.reappeared_window_days * days]
        fixes = signals.fixed_signals(team_id=team.pk, since=now - config.reappeared_lookback_days * days, until=now)
        found += nudge_rules.reappeared(back, fixes, topics)
        images = signals.new_image_signals(team_id=team.pk, since=now - config.outdated_base_window_days * days, until=now)
        found += nudge_rules.outdated_base(images, topics, config)
    else:
        # On ingest: only what just happened in a cluster and is worth saying now.
        found = [
            c
            for c in found
            if c.rule in nudge_rules.URGENT_RULES and (topics[c.topic_id].urgent or c.rule != NudgeRule.RUNTIME_IN_PRODUCTION)
        ]
    return nudge_rules.best_per_topic(found)


def _blocked_topics(*, team: Team, now: dt.datetime, config: NudgeConfig) -> set[int]:
    """Topics in cool-down, dismissed recently, or with a nudge still open."""
    days = dt.timedelta(days=1)
    recent = Q(created_at__gt=now - config.cooldown_days * days)
    dismissed = Q(state=NudgeState.DISMISSED, dismissed_at__gt=now - config.dismissed_cooldown_days * days)
    still_open = Q(state__in=[NudgeState.NEW, NudgeState.OPENED, NudgeState.SNOOZED])
    return set(Nudge.objects.filter(recent | dismissed | still_open, team=team, created_at__lte=now).values_list("topic_id", flat=True))


def _pick_module(*, team: Team, topic: TopicInfo) -> int:
    """The topic's first module the team has not been pointed at yet (else its first)."""
    used = set(Nudge.objects.filter(team=team, topic_id=topic.id).values_list("module_id", flat=True))
    return next((module_id for module_id in topic.module_ids if module_id not in used), topic.module_ids[0])


def _wake_snoozed(*, team: Team, now: dt.datetime) -> None:
    woken = Nudge.objects.filter(team=team, state=NudgeState.SNOOZED, snooze_until__lte=now)
    woken.filter(opened_at__isnull=True).update(state=NudgeState.NEW, snooze_until=None)
    woken.filter(opened_at__isnull=False).update(state=NudgeState.OPENED, snooze_until=None)


def _compute_team(*, team: Team, now: dt.datetime, config: NudgeConfig, topics: dict[int, TopicInfo], urgent_only: bool) -> list[Nudge]:
    with transaction.atomic():
        # One computation per team at a time: the weekly limit holds even with two workers.
        Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()
        _wake_snoozed(team=team, now=now)
        if signals.team_is_busy(team_id=team.pk, now=now, hours=config.busy_hours, severities=config.busy_severities):
            return []
        made_this_week = Nudge.objects.filter(team=team, created_at__gt=now - dt.timedelta(days=7), created_at__lte=now).count()
        budget = config.per_week - made_this_week
        if budget <= 0:
            return []
        candidates = _candidates(team=team, now=now, config=config, topics=topics, urgent_only=urgent_only)
        blocked = _blocked_topics(team=team, now=now, config=config)
        created: list[Nudge] = []
        for candidate in candidates:
            if len(created) >= budget:
                break
            if candidate.topic_id in blocked:
                continue
            nudge = _create(team=team, candidate=candidate, topic=topics[candidate.topic_id], now=now)
            if nudge is not None:
                created.append(nudge)
        return created


def _create(*, team: Team, candidate: Candidate, topic: TopicInfo, now: dt.datetime) -> Nudge | None:
    try:
        with transaction.atomic():
            nudge = Nudge.objects.create(
                team=team,
                topic_id=topic.id,
                module_id=_pick_module(team=team, topic=topic),
                rule=candidate.rule,
                reason=candidate.reason[:MAX_REASON],
                findings_count=len(candidate.finding_ids),
                period=week_start(_local(now).date()),
                created_at=now,
            )
    except IntegrityError:
        return None  # this (team, topic, week) already has its nudge
    nudge.findings.set(Finding.objects.filter(pk__in=candidate.finding_ids).values_list("pk", flat=True))
    return nudge


def nudges_compute(
    *, now: dt.datetime | None = None, teams: Iterable[Team] | None = None, config: NudgeConfig | None = None, urgent_only: bool = False
) -> list[Nudge]:
    """Run the rules once for every team (or ``teams``); returns the nudges made.  Idempotent."""
    now = now or timezone.now()
    config = config or NudgeConfig.from_settings()
    if config.is_quiet(_local(now).hour):
        return []
    topics = topic_catalogue()
    if not topics:
        return []
    created: list[Nudge] = []
    for team in teams if teams is not None else Team.objects.order_by("pk"):
        created += _compute_team(team=team, now=now, config=config, topics=topics, urgent_only=urgent_only)
    return created


def sightings_record(*, applied: Sequence[tuple[Report, Sequence[int]]]) -> set[int]:
    """Record when event reports (admission, runtime) touched each of their findings; returns the teams touched.

    ``applied``: each report with the ids of the findings it named (from ingest: a finding's ``last_report``
    names only the last of several reports applied in one batch, and each of them is a sighting).
    """
    touched = {pk for report, ids in applied if report.format in EVENT_FORMATS for pk in ids}
    if not touched:
        return set()
    teams = dict(Finding.objects.filter(pk__in=touched, team__isnull=False).values_list("pk", "team_id"))
    EventSighting.objects.bulk_create(
        [
            EventSighting(team_id=teams[pk], finding_id=pk, report=report, seen_at=report.observed_at)
            for report, ids in applied
            if report.format in EVENT_FORMATS
            for pk in ids
            if pk in teams
        ],
        ignore_conflicts=True,
    )
    return set(teams.values())


def nudges_after_reports(*, applied: Sequence[tuple[Any, Sequence[int]]]) -> list[Nudge]:
    """After reports are applied: record event sightings, and nudge at once on urgent classes (once for all).

    ``applied``: report ids with the ids of the findings each named.  Called by ``claim`` after
    its transaction; it never raises, a nudge is never worth failing an ingest for (the hourly computation
    catches up).
    """
    try:
        reports = Report.objects.filter(pk__in=[report_id for report_id, _ in applied], status=ReportStatus.DONE).in_bulk()
        done = [(reports[report_id], ids) for report_id, ids in applied if report_id in reports]
        if not done:
            return []
        team_ids = sightings_record(applied=done)
        if not team_ids:
            return []
        now = max(report.observed_at for report, _ in done)
        return nudges_compute(now=now, teams=Team.objects.filter(pk__in=team_ids).order_by("pk"), urgent_only=True)
    except Exception:
        logger.exception("nudges after reports %s failed", [report_id for report_id, _ in applied][:5])
        return []


# --- what champions do ---------------------------------------------------------------------------


def _ensure_can_act(*, nudge: Nudge, by: Any) -> None:
    if not can_triage(by, nudge.team):
        raise ApplicationError(f"only the champion and members of {nudge.team.name} can act on its nudges", code="forbidden", status=403)


def _save(nudge: Nudge, by: Any, fields: list[str]) -> Nudge:
    nudge.acted_by = by if isinstance(by, User) else None
    nudge.save(update_fields=[*fields, "acted_by"])
    return nudge


def nudge_open(*, nudge: Nudge, by: Any, now: dt.datetime | None = None) -> Nudge:
    """The champion opened the module: a new or snoozed nudge becomes opened."""
    _ensure_can_act(nudge=nudge, by=by)
    now = now or timezone.now()
    fields = []
    if nudge.opened_at is None:
        nudge.opened_at = now
        fields.append("opened_at")
    if nudge.state in (NudgeState.NEW, NudgeState.SNOOZED):
        nudge.state = NudgeState.OPENED
        nudge.snooze_until = None
        fields += ["state", "snooze_until"]
    return _save(nudge, by, fields) if fields else nudge


def nudge_complete(*, nudge: Nudge, by: Any, shared_with_team: bool = False, now: dt.datetime | None = None) -> Nudge:
    """Done (and, optionally, shared with the team)."""
    _ensure_can_act(nudge=nudge, by=by)
    if nudge.state == NudgeState.DONE:
        return nudge
    now = now or timezone.now()
    nudge.state = NudgeState.DONE
    nudge.completed_at = now
    nudge.opened_at = nudge.opened_at or now
    nudge.shared_with_team = shared_with_team
    nudge.snooze_until = None
    return _save(nudge, by, ["state", "completed_at", "opened_at", "shared_with_team", "snooze_until"])


def nudge_snooze(*, nudge: Nudge, by: Any, days: int, now: dt.datetime | None = None, config: NudgeConfig | None = None) -> Nudge:
    """Hide the nudge for ``days`` days; it comes back after."""
    _ensure_can_act(nudge=nudge, by=by)
    config = config or NudgeConfig.from_settings()
    if nudge.state in (NudgeState.DONE, NudgeState.DISMISSED):
        raise ApplicationError(f"this nudge is already {nudge.state}", code="invalid_state", status=409)
    if not 1 <= days <= config.max_snooze_days:
        raise ApplicationError(f"snooze for 1 to {config.max_snooze_days} days", code="invalid_days")
    now = now or timezone.now()
    nudge.state = NudgeState.SNOOZED
    nudge.snooze_until = now + dt.timedelta(days=days)
    return _save(nudge, by, ["state", "snooze_until"])


def nudge_dismiss(*, nudge: Nudge, by: Any, reason: str, now: dt.datetime | None = None) -> Nudge:
    """Not useful: dismissed with a reason (the topic then rests for ``dismissed_cooldown_days``)."""
    _ensure_can_act(nudge=nudge, by=by)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("tell us why you dismiss it: it helps choose better nudges", code="reason_required")
    if nudge.state == NudgeState.DONE:
        raise ApplicationError("this nudge is already done", code="invalid_state", status=409)
    now = now or timezone.now()
    nudge.state = NudgeState.DISMISSED
    nudge.dismissed_at = now
    nudge.dismiss_reason = reason[:1000]
    nudge.snooze_until = None
    return _save(nudge, by, ["state", "dismissed_at", "dismiss_reason", "snooze_until"])
