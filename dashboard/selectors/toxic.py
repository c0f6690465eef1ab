"""Toxic combinations: an exploitable vulnerability in a version running now, in a workload that is privileged or
runs as root, with a recent runtime alert.

A row is one (vulnerability, workload running it).  It needs the first two (KEV or EPSS at or above
VIGIL_TOXIC_EPSS; a live sighting of a version the finding was seen in); the other two add to it: the workload's
own open policy or misconfiguration findings say "privileged" or "runs as root" (the finding classes nudges use),
and a runtime alert from the workload or the image seen within VIGIL_TOXIC_ALERT_DAYS.  Rows are ordered by how
many conditions hold, then KEV, EPSS and the risk score, and each says why it is where it is.  A constant number of
queries, whatever the number of rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES, Finding, Kind, Stream, WorkloadSighting
from dashboard.selectors.finding_classes import FACT_FIELDS, classes_for
from dashboard.selectors.finding_classes import FindingFacts as ClassFacts
from dashboard.selectors.running import finding_versions, is_running, live_sightings
from dashboard.templatetags.moments import moment_text

#: Candidate vulnerabilities looked at (the most risky first).
CANDIDATES = 500
_PRIVILEGE_CLASSES = {"vigil:privileged": "privileged", "vigil:root-container": "runs as root"}


@dataclasses.dataclass(frozen=True)
class Hold:
    name: str  # exploitable, running, privileged, runtime_alert
    holds: bool
    why: str


@dataclasses.dataclass(frozen=True)
class ToxicRow:
    finding: Finding
    sighting: WorkloadSighting
    conditions: tuple[Hold, ...]

    @property
    def count(self) -> int:
        return sum(1 for condition in self.conditions if condition.holds)

    @property
    def workload(self) -> str:
        s = self.sighting
        return "/".join(part for part in (s.cluster, s.namespace, s.workload_kind, s.workload_name) if part)

    @property
    def why_first(self) -> str:
        held = [condition.why for condition in self.conditions if condition.holds]
        return f"{self.count} of {len(self.conditions)}: " + "; ".join(held)

    def sort_key(self) -> tuple[Any, ...]:
        f = self.finding
        return (-self.count, not f.kev, -(f.epss or 0.0), -f.risk_score, f.pk, self.workload)


def _workload_key(cluster: str, namespace: str, name: str) -> tuple[str, str, str]:
    return (cluster, namespace, name)


def toxic_combinations(*, user: Any, team: Any = None, now: dt.datetime | None = None, limit: int = 100) -> list[ToxicRow]:
    """The toxic combinations ``user`` may see (of ``team`` only, when given), most toxic first."""
    now = now or timezone.now()
    epss_min = settings.VIGIL_TOXIC_EPSS
    qs = (
        Finding.objects.visible_to(user)
        .filter(kind=Kind.VULNERABILITY, status__in=ACTIVE_STATUSES, exposed=True, image__isnull=False)
        .filter(Q(kev=True) | Q(epss__gte=epss_min))
    )
    if team is not None:
        qs = qs.filter(team=team)
    candidates = list(qs.select_related("team", "image").order_by("-risk_score", "id")[:CANDIDATES])
    if not candidates:
        return []
    versions = finding_versions([f.pk for f in candidates])
    sightings: dict[int, list[WorkloadSighting]] = {}
    for sighting in live_sightings(now).filter(image_id__in={f.image_id for f in candidates}).order_by("-last_seen"):
        sightings.setdefault(sighting.image_id, []).append(sighting)
    pairs = [
        (finding, sighting)
        for finding in candidates
        for sighting in sightings.get(finding.image_id or 0, [])
        if is_running(versions.get(finding.pk, set()), {(sighting.tag, sighting.digest)})
    ]
    if not pairs:
        return []
    workloads = {_workload_key(s.cluster, s.namespace, s.workload_name) for _, s in pairs}
    privileges = _privileges(workloads)
    images = {f.image_id for f, _ in pairs if f.image_id is not None}
    alerts = _alerts(workloads, images, now - dt.timedelta(days=settings.VIGIL_TOXIC_ALERT_DAYS))
    rows = [_row(finding, sighting, privileges, alerts, epss_min) for finding, sighting in pairs]
    return sorted(rows, key=ToxicRow.sort_key)[:limit]


def _row(finding: Finding, sighting: WorkloadSighting, privileges: dict, alerts: dict, epss_min: float) -> ToxicRow:
    key = _workload_key(sighting.cluster, sighting.namespace, sighting.workload_name)
    exploitable = "in CISA KEV" if finding.kev else f"EPSS {finding.epss:.2f} (at least {epss_min:g})"
    where = "/".join(part for part in (sighting.cluster, sighting.namespace, sighting.workload_kind, sighting.workload_name) if part)
    running = f"{sighting.tag or sighting.digest[:19]} runs in {where}, seen {moment_text(sighting.last_seen)}"
    privileged = privileges.get(key, [])
    alert = alerts.get(("workload", *key)) or alerts.get(("image", finding.image_id))
    return ToxicRow(
        finding=finding,
        sighting=sighting,
        conditions=(
            Hold("exploitable", True, exploitable),
            Hold("running", True, running),
            Hold("privileged", bool(privileged), "; ".join(privileged) if privileged else "neither privileged nor root by its findings"),
            Hold(
                "runtime_alert",
                alert is not None,
                f"runtime alert {alert.rule_id!r} {alert.last_seen:%Y-%m-%d %H:%M}" if alert is not None else "no recent runtime alert",
            ),
        ),
    )


def _privileges(workloads: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[str]]:
    """Workload -> "privileged (rule)" / "runs as root (rule)", from its open policy and misconfiguration findings."""
    rows = (
        Finding.objects.filter(
            kind__in=(Kind.POLICY, Kind.MISCONFIGURATION),
            status__in=ACTIVE_STATUSES,
            resource_namespace__in={ns for _, ns, _ in workloads},
            resource_name__in={name for _, _, name in workloads},
        )
        .order_by("id")
        .values("resource_cluster", "resource_namespace", "resource_name", *FACT_FIELDS)
    )
    out: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        key = _workload_key(row["resource_cluster"], row["resource_namespace"], row["resource_name"])
        if key not in workloads:
            continue
        classes = classes_for(ClassFacts.from_values(row))
        for klass, label in _PRIVILEGE_CLASSES.items():
            if klass in classes:
                text = f"{label} ({row['rule_id']})"
                if text not in out.setdefault(key, []):
                    out[key].append(text)
    return out


def _alerts(workloads: set[tuple[str, str, str]], image_ids: set[int], since: dt.datetime) -> dict[tuple[Any, ...], Finding]:
    """The latest runtime alert per workload and per image since ``since``."""
    recent = Finding.objects.filter(stream=Stream.RUNTIME, last_seen__gte=since).filter(
        Q(image_id__in=image_ids) | Q(resource_name__in={name for _, _, name in workloads})
    )
    out: dict[tuple[Any, ...], Finding] = {}
    for alert in recent.only("rule_id", "last_seen", "image_id", "resource_cluster", "resource_namespace", "resource_name").order_by(
        "last_seen"
    ):
        key = _workload_key(alert.resource_cluster, alert.resource_namespace, alert.resource_name)
        if key in workloads:
            out[("workload", *key)] = alert
        if alert.image_id in image_ids:
            out[("image", alert.image_id)] = alert
    return out
