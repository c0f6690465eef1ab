"""Lifecycle scopes: what a report speaks for, so closing by absence never reaches beyond it.

A scan speaks for its image repository (+ stream + source); a policy report for the
(policy, resource) pairs it evaluated, or for a whole policy when it lists every
violator (a Gatekeeper constraint).  One row per scope is locked while a report of
that scope is applied, which serialises concurrent imports of overlapping reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dashboard.models import LifecycleScope, Report, Team
from scanners.base import ImageRef, ParseResult, ResourceRef

BATCH = 1000


def _resource_key(resource: ResourceRef | None) -> str:
    if resource is None:
        return ""
    return "/".join((resource.cluster, resource.namespace, resource.kind, resource.name))


def scope_key(*, stream: str, source: str, image: ImageRef | None, resource: ResourceRef | None, team: Team | None) -> str:
    """The lifecycle scope: image repository + stream + source, else the resource, else the team."""
    if image is not None:
        anchor = f"image:{image.name}"
    elif resource is not None and resource.name:
        anchor = f"resource:{_resource_key(resource)}"
    else:
        anchor = f"team:{team.slug if team else '-'}"
    return f"{stream}|{source}|{anchor}"[:600]


def policy_scope_key(*, stream: str, source: str, policy: str, resource: ResourceRef | None) -> str:
    """The scope of one policy on one resource, or of the whole policy when ``resource`` is None."""
    key = f"{stream}|{source}|policy:{policy}"
    return (key if resource is None else f"{key}|resource:{_resource_key(resource)}")[:600]


def covered_scopes(
    *,
    team: Team | None,
    source: str,
    stream: str,
    result: ParseResult,
    artifact: ImageRef | None,
    item_scopes: Iterable[tuple[str, str]],
) -> set[str]:
    """Every scope this (complete) report speaks for.  ``item_scopes``: (scope key, policy) per finding."""
    listed = list(item_scopes)
    scopes = {key for key, _ in listed}
    if artifact is not None:
        scopes.add(scope_key(stream=stream, source=source, image=artifact, resource=None, team=team))
    for resource in result.evaluated:
        scopes.add(scope_key(stream=stream, source=source, image=None, resource=resource, team=team))
    incomplete = set(result.incomplete_policies)
    for evaluated_resource, policy in result.evaluated_policies:
        if policy not in incomplete:
            scopes.add(policy_scope_key(stream=stream, source=source, policy=policy, resource=evaluated_resource))
    scopes -= {key for key, policy in listed if policy in incomplete}
    if not scopes and stream == "scan" and not result.evaluated:
        # A report without findings nor an artifact (e.g. an empty SARIF log) speaks for its team's scope.
        scopes.add(scope_key(stream=stream, source=source, image=None, resource=None, team=team))
    return scopes


def explicitly_evaluated(stream: str, source: str, result: ParseResult) -> set[str]:
    """Scopes of (policy, resource) pairs the report evaluated one by one (pass and skip included)."""
    incomplete = set(result.incomplete_policies)
    return {
        policy_scope_key(stream=stream, source=source, policy=policy, resource=resource)
        for resource, policy in result.evaluated_policies
        if resource is not None and policy not in incomplete
    }


def lock_scopes(keys: Iterable[str]) -> dict[str, Any]:
    """Serialise reports of the same scope: lock one row per scope, always in key order (no deadlocks).

    Returns the id of the report last applied to each scope (None if none was).
    """
    ordered = sorted(set(keys))
    last: dict[str, Any] = {}
    for start in range(0, len(ordered), BATCH):
        chunk = ordered[start : start + BATCH]
        LifecycleScope.objects.bulk_create([LifecycleScope(key=key) for key in chunk], ignore_conflicts=True)
        last.update(LifecycleScope.objects.select_for_update().filter(key__in=chunk).order_by("key").values_list("key", "last_report_id"))
    return last


def mark_applied(keys: Iterable[str], *, report: Report) -> None:
    """Record ``report`` as the last applied to these (locked) scopes."""
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), BATCH):
        LifecycleScope.objects.filter(key__in=ordered[start : start + BATCH]).update(last_report=report)
