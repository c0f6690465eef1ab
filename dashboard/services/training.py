"""Loading the training catalogue (dashboard/data/training_catalogue.json) into the database.

Idempotent and respectful of administrators: topics and modules are matched by slug; missing ones are
created, existing ones are left as an administrator edited them unless ``update=True``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from dashboard.errors import ApplicationError
from dashboard.models import Topic, TrainingModule

CATALOGUE = Path(__file__).resolve().parent.parent / "data" / "training_catalogue.json"
_TOPIC_FIELDS = ("name", "summary", "keys", "urgent")
_MODULE_FIELDS = ("title", "url", "provider", "format", "minutes", "description", "rank")


@dataclasses.dataclass
class LoadOutcome:
    topics_created: int = 0
    topics_updated: int = 0
    modules_created: int = 0
    modules_updated: int = 0
    links_added: int = 0

    @property
    def changed(self) -> bool:
        return any(dataclasses.astuple(self))


def _problem(message: str) -> ApplicationError:
    return ApplicationError(f"training catalogue: {message}", code="invalid_catalogue")


#: What a module teaches.  "remediation": the change that avoids or fixes the finding (what a nudge should
#: lead to first); "detection": how a detector or an attack works; "reference": catalogues, benchmarks, lists.
MODULE_KINDS = ("remediation", "detection", "reference")


def read_catalogue(path: Path = CATALOGUE) -> dict[str, Any]:
    """The catalogue file, checked: unique slugs, http(s) URLs, known formats, kinds and topics."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _problem(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("topics"), list) or not isinstance(data.get("modules"), list):
        raise _problem("expected an object with 'topics' and 'modules' lists")
    topics = {}
    for topic in data["topics"]:
        if not isinstance(topic, dict) or not topic.get("slug") or not topic.get("name"):
            raise _problem(f"a topic needs a slug and a name: {topic!r:.120}")
        if topic["slug"] in topics:
            raise _problem(f"topic {topic['slug']!r} appears twice")
        if not all(isinstance(key, str) and ":" in key for key in topic.get("keys", [])):
            raise _problem(f"topic {topic['slug']!r}: keys look like 'vigil:root-container' or 'cwe:CWE-79'")
        topics[topic["slug"]] = topic
    slugs: set[str] = set()
    validate_url = URLValidator(schemes=["http", "https"])
    for module in data["modules"]:
        slug = module.get("slug") if isinstance(module, dict) else None
        if not slug or slug in slugs:
            raise _problem(f"every module needs a unique slug: {module!r:.120}")
        slugs.add(slug)
        try:
            validate_url(module.get("url", ""))
        except ValidationError:
            raise _problem(f"module {slug!r}: {module.get('url')!r} is not an http(s) URL") from None
        if module.get("format", TrainingModule.Format.DOCUMENTATION) not in TrainingModule.Format.values:
            raise _problem(f"module {slug!r}: format must be one of {', '.join(TrainingModule.Format.values)}")
        unknown = [name for name in module.get("topics", []) if name not in topics]
        if unknown:
            raise _problem(f"module {slug!r}: unknown topics {', '.join(unknown)}")
        if module.get("kind") not in MODULE_KINDS:
            raise _problem(f"module {slug!r}: kind must be one of {', '.join(MODULE_KINDS)}")
    return data


@transaction.atomic
def training_load(*, path: Path = CATALOGUE, update: bool = False) -> LoadOutcome:
    """Create missing topics and modules (and their links); with ``update``, overwrite the others too."""
    data = read_catalogue(path)
    outcome = LoadOutcome()
    topics: dict[str, Topic] = {topic.slug: topic for topic in Topic.objects.all()}
    for item in data["topics"]:
        values = {field: item[field] for field in _TOPIC_FIELDS if field in item}
        topic = topics.get(item["slug"])
        if topic is None:
            topics[item["slug"]] = Topic.objects.create(slug=item["slug"], **values)
            outcome.topics_created += 1
        elif update and any(getattr(topic, field) != value for field, value in values.items()):
            Topic.objects.filter(pk=topic.pk).update(**values)
            outcome.topics_updated += 1
    modules = {module.slug: module for module in TrainingModule.objects.all()}
    links = set(TrainingModule.topics.through.objects.values_list("trainingmodule_id", "topic_id"))
    new_links = []
    for item in data["modules"]:
        values = {field: item[field] for field in _MODULE_FIELDS if field in item}
        module = modules.get(item["slug"])
        if module is None:
            module = TrainingModule.objects.create(slug=item["slug"], **values)
            outcome.modules_created += 1
        elif update and any(getattr(module, field) != value for field, value in values.items()):
            TrainingModule.objects.filter(pk=module.pk).update(**values)
            outcome.modules_updated += 1
        elif not update and item["slug"] in modules:
            continue  # an existing module's topics are the administrator's to change
        for topic_slug in item.get("topics", []):
            pair = (module.pk, topics[topic_slug].pk)
            if pair not in links:
                links.add(pair)
                new_links.append(TrainingModule.topics.through(trainingmodule_id=pair[0], topic_id=pair[1]))
    TrainingModule.topics.through.objects.bulk_create(new_links)
    outcome.links_added = len(new_links)
    return outcome
