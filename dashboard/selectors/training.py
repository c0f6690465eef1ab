"""Reads of the training catalogue: topics, modules, and the modules for a finding."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Prefetch

from dashboard.models import Topic, TrainingModule
from dashboard.selectors.finding_classes import FindingFacts, classes_for, matching_topics


@dataclasses.dataclass(frozen=True)
class TopicInfo:
    """A topic as the rules see it: its keys and its active modules in preference order."""

    id: int
    slug: str
    name: str
    summary: str
    keys: tuple[str, ...]
    urgent: bool
    module_ids: tuple[int, ...]


def topic_catalogue() -> dict[int, TopicInfo]:
    """Active topics that have at least one active module (two queries)."""
    modules = TrainingModule.objects.filter(active=True).order_by("rank", "minutes", "title").only("id")
    topics = Topic.objects.filter(active=True).prefetch_related(Prefetch("modules", queryset=modules, to_attr="active_modules"))
    out: dict[int, TopicInfo] = {}
    for topic in topics.order_by("slug"):
        module_ids = tuple(module.pk for module in topic.active_modules)  # type: ignore[attr-defined]
        if not module_ids:
            continue
        keys = tuple(str(key) for key in (topic.keys or []) if isinstance(key, str))
        out[topic.pk] = TopicInfo(topic.pk, topic.slug, topic.name, topic.summary, keys, topic.urgent, module_ids)
    return out


def modules_for_finding(*, finding: Any, limit: int = 4) -> list[TrainingModule]:
    """ "Learn how to avoid this": the modules of every topic the finding's classes match (two queries)."""
    keys = classes_for(FindingFacts.of(finding))
    if not keys:
        return []
    topic_keys = dict(Topic.objects.filter(active=True).values_list("id", "keys"))
    topic_ids = matching_topics(keys, {pk: value or [] for pk, value in topic_keys.items()})
    if not topic_ids:
        return []
    modules = TrainingModule.objects.filter(active=True, topics__in=topic_ids).distinct().order_by("rank", "minutes", "title")
    return list(modules[:limit])


def module_list(*, topic: str = "") -> Any:
    qs = TrainingModule.objects.filter(active=True).prefetch_related("topics")
    if topic:
        qs = qs.filter(topics__slug=topic)
    return qs.order_by("rank", "title")
