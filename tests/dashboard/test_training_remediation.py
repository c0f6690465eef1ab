"""Nudges teach the fix: every topic's first module (the one a nudge leads to) is a remediation resource,
checked on the catalogue as loaded, and "kind" is required of every module."""

from __future__ import annotations

import json

import pytest

from dashboard.errors import ApplicationError
from dashboard.models import TrainingModule
from dashboard.selectors.training import topic_catalogue
from dashboard.services.training import CATALOGUE, MODULE_KINDS, read_catalogue, training_load

pytestmark = pytest.mark.django_db


def first_modules() -> dict[str, str]:
    """Topic slug -> the slug of its first module, in the order nudges and finding pages use."""
    training_load()
    slugs = dict(TrainingModule.objects.values_list("pk", "slug"))
    return {topic.slug: slugs[topic.module_ids[0]] for topic in topic_catalogue().values()}


def test_every_topics_first_module_is_a_remediation_resource() -> None:
    kinds = {module["slug"]: module["kind"] for module in read_catalogue()["modules"]}

    first = first_modules()

    assert len(first) == len(read_catalogue()["topics"])
    assert {topic: module for topic, module in first.items() if kinds[module] != "remediation"} == {}


def test_runtime_file_topics_lead_to_a_read_only_root_filesystem_not_to_falcos_rule_syntax() -> None:
    first = first_modules()
    linked = {module["slug"]: module["topics"] for module in read_catalogue()["modules"]}

    assert first["writes-below-etc"] == first["sensitive-files"] == first["container-drift"] == "k8s-security-context"
    assert {"writes-below-etc", "sensitive-files"} <= set(linked["owasp-docker-security"])
    assert next(m for m in read_catalogue()["modules"] if m["slug"] == "falco-rules")["kind"] == "detection"


def test_a_module_without_a_known_kind_is_refused(tmp_path) -> None:
    data = json.loads(CATALOGUE.read_text())
    data["modules"][0].pop("kind")
    broken = tmp_path / "catalogue.json"
    broken.write_text(json.dumps(data))

    with pytest.raises(ApplicationError, match=f"kind must be one of {', '.join(MODULE_KINDS)}"):
        read_catalogue(broken)
