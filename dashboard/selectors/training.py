"""Reads of the training catalogue: topics, modules, and the modules for a finding."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
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


#: How long a process answers "which module teaches this" from the catalogue it read (the points of enforcement).
#: The catalogue teaches and decides nothing, so an edit seen up to a minute late changes no decision.
PICKER_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class ModulePicker:
    """The catalogue as the points of enforcement use it: for a finding's class keys, the first module of the
    first topic (in slug order) that covers one of them, as ``topic_catalogue`` and nudges pick it."""

    #: (the topic's keys lower-cased, its first active module's id), in slug order.
    topics: tuple[tuple[frozenset[str], int], ...]
    #: Module id -> {"title", "url"}.
    modules: Mapping[int, Mapping[str, str]]
    read_at: float

    def module_for(self, classes: Iterable[str]) -> dict[str, str] | None:
        wanted = {key.lower() for key in classes}
        if not wanted:
            return None
        for keys, module_id in self.topics:
            if wanted & keys and module_id in self.modules:
                return dict(self.modules[module_id])
        return None


#: This process's picker (replaced whole, never changed: threads that race both read the catalogue, harmlessly).
_picked: dict[str, ModulePicker] = {}


def _picker_read() -> ModulePicker:
    catalogue = topic_catalogue()
    topics = tuple((frozenset(key.lower() for key in topic.keys), topic.module_ids[0]) for topic in catalogue.values())
    wanted = {module_id for _, module_id in topics}
    rows = TrainingModule.objects.filter(pk__in=wanted).values_list("id", "title", "url") if wanted else []
    modules = {pk: {"title": title, "url": url} for pk, title, url in rows}
    return ModulePicker(topics=topics, modules=modules, read_at=time.monotonic())


def module_picker() -> ModulePicker:
    """The catalogue's module picker, read at most once a minute per process (three queries when it is read)."""
    picker = _picked.get("picker")
    if picker is None or time.monotonic() - picker.read_at >= PICKER_SECONDS:
        picker = _picked["picker"] = _picker_read()
    return picker


def forget_module_picker() -> None:
    """Read the catalogue again at the next use (tests, and after loading a catalogue in this process)."""
    _picked.clear()


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
