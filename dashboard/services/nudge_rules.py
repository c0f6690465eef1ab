"""When a team gets a nudge: the rules, and the settings that tune them.

Each rule is a pure function of the signals it counts (``dashboard/selectors/nudges.py``), the topic
catalogue and the configuration; it returns candidates, and ``services/nudges.py`` decides which of
them become nudges (weekly limit, cool-down, quiet hours, incidents).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings

from dashboard.models import NudgeRule
from dashboard.models.choices import SEVERITY_RANK
from dashboard.selectors.finding_classes import nudge_classes_for, policy_names
from dashboard.selectors.nudges import Signal
from dashboard.selectors.training import TopicInfo

#: When several rules want a nudge, the more pressing one wins (lower first).
RULE_PRIORITY = {
    NudgeRule.RUNTIME_IN_PRODUCTION: 0,
    NudgeRule.REAPPEARED: 1,
    NudgeRule.REPEATED_DENIALS: 2,
    NudgeRule.OUTDATED_BASE: 3,
    NudgeRule.REPEATED_CLASS: 4,
}
#: Rules worth running at once on ingest: they are about what just happened in a cluster.
URGENT_RULES = frozenset({NudgeRule.RUNTIME_IN_PRODUCTION, NudgeRule.REPEATED_DENIALS})


@dataclasses.dataclass(frozen=True)
class NudgeConfig:
    """Thresholds and windows; ``settings.VIGIL_NUDGES`` overrides any of them."""

    #: At most this many nudges per team in any 7 days.
    per_week: int = 2
    #: No second nudge on the same topic for this many days after one (any state).
    cooldown_days: int = 28
    #: ... and for this many days after one was dismissed.
    dismissed_cooldown_days: int = 90
    repeated_class_threshold: int = 3
    repeated_class_window_days: int = 14
    denials_threshold: int = 3
    denials_window_days: int = 7
    runtime_window_days: int = 7
    reappeared_window_days: int = 14
    #: How far back a fix counts for "it came back".
    reappeared_lookback_days: int = 180
    outdated_base_threshold: int = 3
    outdated_base_window_days: int = 7
    #: An incident: a runtime alert of these severities in the last ``busy_hours`` hours; nothing is nudged meanwhile.
    busy_hours: int = 24
    busy_severities: tuple[str, ...] = ("critical",)
    #: (start hour, end hour) in TIME_ZONE during which no nudge is made, e.g. (22, 7); None for none.
    quiet_hours: tuple[int, int] | None = None
    #: A runtime alert counts as "in production" unless its namespace or cluster matches this.
    nonproduction_pattern: str = r"(^|[-_.])(dev|develop|development|test|testing|stage|staging|qa|sandbox|preview|local)([-_.]|$)"
    max_snooze_days: int = 30
    impact_window_days: int = 30
    #: Weekly digest: from this weekday (0 = Monday) and hour (TIME_ZONE) on.
    digest_weekday: int = 0
    digest_hour: int = 8

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None = None) -> NudgeConfig:
        values: dict[str, Any] = {**getattr(settings, "VIGIL_NUDGES", {}), **(overrides or {})}
        known = {field.name: field for field in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                continue
            if name == "quiet_hours":
                clean[name] = parse_quiet_hours(value)
            elif name == "busy_severities":
                clean[name] = tuple(value) if not isinstance(value, str) else tuple(v.strip() for v in value.split(",") if v.strip())
            elif isinstance(known[name].default, int):
                clean[name] = int(value)
            else:
                clean[name] = value
        return cls(**clean)

    def is_quiet(self, hour: int) -> bool:
        if self.quiet_hours is None:
            return False
        start, end = self.quiet_hours
        if start == end:
            return False
        return start <= hour < end if start < end else hour >= start or hour < end

    def is_production(self, *, namespace: str, cluster: str) -> bool:
        pattern = re.compile(self.nonproduction_pattern, re.IGNORECASE)
        return not any(pattern.search(value) for value in (namespace, cluster) if value)


def parse_quiet_hours(value: Any) -> tuple[int, int] | None:
    """ "22-7" or (22, 7) -> (22, 7); "" or None -> None."""
    if value in (None, "", ()):
        return None
    if isinstance(value, str):
        start, _, end = value.partition("-")
        value = (start, end)
    start_hour, end_hour = (int(part) for part in value)
    if not (0 <= start_hour < 24 and 0 <= end_hour < 24):
        raise ValueError(f"quiet hours must be hours 0-23, not {value!r}")
    return start_hour, end_hour


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A nudge a rule would like to make."""

    topic_id: int
    rule: str
    finding_ids: tuple[int, ...]
    reason: str
    #: Within a rule, heavier first (runtime alerts: the highest severity).
    weight: int = 0

    @property
    def sort_key(self) -> tuple[int, int, int, int]:
        return (RULE_PRIORITY[NudgeRule(self.rule)], -self.weight, -len(self.finding_ids), self.topic_id)


def _topics_of(signal: Signal, topics: Mapping[int, TopicInfo]) -> list[int]:
    keys = {key.lower() for key in nudge_classes_for(signal.facts)}
    return [topic_id for topic_id, topic in topics.items() if keys & {key.lower() for key in topic.keys}]


def _group(signals: Iterable[Signal], topics: Mapping[int, TopicInfo]) -> dict[int, list[Signal]]:
    grouped: dict[int, list[Signal]] = defaultdict(list)
    for signal in signals:
        for topic_id in _topics_of(signal, topics):
            grouped[topic_id].append(signal)
    return grouped


def _ids(signals: Iterable[Signal]) -> tuple[int, ...]:
    return tuple(sorted({signal.finding_id for signal in signals}))


def _example(signal: Signal) -> str:
    rule = signal.facts.rule_id
    return f"{rule} on {signal.where}" if signal.where else rule


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def repeated_class(appearances: Sequence[Signal], topics: Mapping[int, TopicInfo], config: NudgeConfig) -> list[Candidate]:
    """The same class appeared at least ``repeated_class_threshold`` times (distinct findings) in the window."""
    out = []
    for topic_id, signals in _group(appearances, topics).items():
        ids = _ids(signals)
        if len(ids) < config.repeated_class_threshold:
            continue
        reason = (
            f"“{topics[topic_id].name}” came up {_plural(len(ids), 'time')} in your team's reports in the last "
            f"{config.repeated_class_window_days} days, for example {_example(signals[0])}."
        )
        out.append(Candidate(topic_id, NudgeRule.REPEATED_CLASS, ids, reason))
    return out


def reappeared(appearances: Sequence[Signal], fixes: Sequence[Signal], topics: Mapping[int, TopicInfo]) -> list[Candidate]:
    """A class came back after the team had fixed it.

    A finding that reopens always counts; for other kinds than vulnerabilities, so does a new finding of a
    class the team fixed earlier (a new CVE after an old one was patched is routine, not a relapse).
    """
    fixed_at: dict[int, list[Signal]] = _group(fixes, topics)
    out = []
    for topic_id, signals in _group(appearances, topics).items():
        earlier = fixed_at.get(topic_id, [])
        back = [
            s
            for s in signals
            if s.event == "reopened"
            or (s.facts.kind != "vulnerability" and any(fix.at < s.at and fix.finding_id != s.finding_id for fix in earlier))
        ]
        if not back:
            continue
        ids = _ids(back)
        reason = (
            f"“{topics[topic_id].name}” is back: {_plural(len(ids), 'finding')} turned up again after your team had fixed "
            f"this kind of problem, for example {_example(back[0])}."
        )
        out.append(Candidate(topic_id, NudgeRule.REAPPEARED, ids, reason))
    return out


def repeated_denials(denials: Sequence[Signal], topics: Mapping[int, TopicInfo], config: NudgeConfig) -> list[Candidate]:
    """The same admission policy denied the team's deploys at least ``denials_threshold`` times in the window."""
    by_policy: dict[str, list[Signal]] = defaultdict(list)
    for signal in denials:
        names = policy_names(signal.facts.source, signal.facts.rule_id)
        by_policy[names[0] if names else signal.facts.rule_id].append(signal)
    out = []
    for policy, signals in sorted(by_policy.items()):
        times = sum(signal.count for signal in signals)
        if times < config.denials_threshold:
            continue
        for topic_id in sorted({topic_id for signal in signals for topic_id in _topics_of(signal, topics)}):
            reason = (
                f"The admission policy “{policy}” turned away your team's deploys {_plural(times, 'time')} in the last "
                f"{config.denials_window_days} days, for example {signals[-1].where or policy}."
            )
            out.append(Candidate(topic_id, NudgeRule.REPEATED_DENIALS, _ids(signals), reason))
    return out


def runtime_in_production(alerts: Sequence[Signal], topics: Mapping[int, TopicInfo], config: NudgeConfig) -> list[Candidate]:
    """A runtime alert of the class fired in production in the window (one is enough)."""
    production = [signal for signal in alerts if config.is_production(namespace=signal.namespace, cluster=signal.cluster)]
    out = []
    for topic_id, signals in _group(production, topics).items():
        latest = max(signals, key=lambda s: (s.at, s.finding_id))
        where = f" ({latest.where})" if latest.where else ""
        count = len(_ids(signals))
        reason = f"Falco saw “{latest.facts.rule_id}” in production{where} in the last {config.runtime_window_days} days" + (
            f", and {_plural(count - 1, 'other alert')} of the same kind." if count > 1 else "."
        )
        weight = max(SEVERITY_RANK.get(signal.severity, 0) for signal in signals)
        out.append(Candidate(topic_id, NudgeRule.RUNTIME_IN_PRODUCTION, _ids(signals), reason, weight))
    return out


def outdated_base(new_image_findings: Sequence[Signal], topics: Mapping[int, TopicInfo], config: NudgeConfig) -> list[Candidate]:
    """A new image tag carries at least ``outdated_base_threshold`` fixable OS-package vulnerabilities."""
    by_tag: dict[tuple[str, str], list[Signal]] = defaultdict(list)
    for signal in new_image_findings:
        if "vigil:outdated-base-image" in nudge_classes_for(signal.facts):
            by_tag[(signal.where, signal.tag)].append(signal)
    out = []
    for (image, tag), signals in sorted(by_tag.items()):
        ids = _ids(signals)
        if len(ids) < config.outdated_base_threshold:
            continue
        for topic_id in sorted({topic_id for signal in signals for topic_id in _topics_of(signal, topics)}):
            if "vigil:outdated-base-image" not in topics[topic_id].keys:
                continue
            reason = (
                f"The new image {image}:{tag} starts from a base with {_plural(len(ids), 'OS-package vulnerability')} "
                "that already have fixes: rebuilding on a current base image removes them in one go."
            ).replace("vulnerabilitys", "vulnerabilities")
            out.append(Candidate(topic_id, NudgeRule.OUTDATED_BASE, ids, reason))
    return out


def best_per_topic(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per topic (the most pressing rule, then the most findings), most pressing first."""
    best: dict[int, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: c.sort_key):
        best.setdefault(candidate.topic_id, candidate)
    return sorted(best.values(), key=lambda c: c.sort_key)
