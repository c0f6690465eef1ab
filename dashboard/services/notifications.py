"""Detecting what needs a person now, and writing it to the outbox (``Notification``) for delivery.

One scan (``notifications_scan``, every minute) reads where events are already recorded, never inside
ingestion: reports finished since the last cursor (their new and reopened critical or KEV findings, the
admission denials and runtime alerts they carried, a failure or held closures), Vigil's own admission
decisions, and, by day, findings whose SLA breaches tomorrow and risk acceptances about to expire.

Grouped: one message per (event, report or day, team, channel), listing at most ``LISTED`` findings and
linking to the filtered queue for the rest.  Deduplicated: each message has a unique key, and the scan reads
from a little before its cursor (``LOOKBACK``: a report committed late is not missed), skipping the reports of
that window it has already read; reading an event twice would write nothing new anyway.  RBAC: a team's
channels only ever hear about the team's own findings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import F, FilteredRelation, Q
from django.urls import reverse
from django.utils import timezone

from dashboard.models import (
    ACTIVE_STATUSES,
    EnforcementPolicy,
    EventSighting,
    Finding,
    FindingEvent,
    GateDecision,
    GateOutcome,
    Notification,
    NotificationChannel,
    NotificationCursor,
    NotificationEvent,
    PolicyMode,
    Report,
    ReportStatus,
    RiskAcceptance,
    Severity,
    Stream,
    Team,
)

#: How far before its cursor a scan reads again (a report whose transaction committed late).
LOOKBACK = dt.timedelta(minutes=10)
#: Findings named in one message; the link leads to all of them.
LISTED = 10
CURSOR = "reports"
#: The daily checks (SLA tomorrow, acceptances expiring) run at the first scan of each day.
DAILY_CURSOR = "daily"
HIGH = (Severity.CRITICAL, Severity.HIGH)


@dataclasses.dataclass
class Draft:
    """A message for a team, before it is written once per subscribed channel."""

    event: str
    team: Team
    group: str
    subject: str
    lines: list[str]
    link: str
    count: int


def absolute(path: str, **query: str) -> str:
    return f"{settings.VIGIL_BASE_URL}{path}" + (f"?{urlencode(query)}" if query else "")


def is_production(*, team_id: int, namespace: str, policies: dict[int, EnforcementPolicy]) -> bool:
    """A production namespace: one the team's policy enforces, or one matching VIGIL_PRODUCTION_NAMESPACES."""
    if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in settings.VIGIL_PRODUCTION_NAMESPACES):
        return True
    policy = policies.get(team_id)
    if policy is None or not namespace:
        return False
    modes = dict(policy.namespace_modes or {})
    if namespace in modes:
        return modes[namespace] == PolicyMode.ENFORCE
    return any(fnmatch.fnmatchcase(namespace, pattern) and mode == PolicyMode.ENFORCE for pattern, mode in modes.items())


def _finding_line(finding: Finding) -> str:
    where = finding.package_name or finding.resource_name or (finding.image.repository if finding.image else "")
    marks = f"{finding.severity}{', KEV' if finding.kev else ''}"
    return f"• {finding.rule_id} ({marks}){f' in {where}' if where else ''}: {absolute(reverse('finding', args=[finding.pk]))}"


def _report_label(report: Report) -> str:
    return f"{report.format or report.declared_format or 'report'} report{f' of {report.image_ref}' if report.image_ref else ''}"


def _finding_draft(*, event: str, team: Team, group: str, subject: str, why: str, findings: list[Finding], query: dict[str, str]) -> Draft:
    lines = [why, "", *(_finding_line(finding) for finding in findings[:LISTED])]
    if len(findings) > LISTED:
        lines.append(f"… and {len(findings) - LISTED} more.")
    link = absolute(reverse("findings"), team=team.slug, **query)
    return Draft(event, team, group, subject, [*lines, "", f"All of them: {link}"], link, len(findings))


def _brought(reports: list[Report]) -> list[tuple[Report, Finding]]:
    """(report, finding) for each active, owned critical or KEV finding a report created (its first report) or
    reopened (a REOPENED event of the report), by report then finding; in one query."""
    by_pk = {report.pk: report for report in reports}
    reopening = FilteredRelation("events", condition=Q(events__type=FindingEvent.Type.REOPENED, events__report__in=reports))
    rows = (
        Finding.objects.annotate(reopening=reopening)
        .filter(Q(severity=Severity.CRITICAL) | Q(kev=True), team__isnull=False, status__in=ACTIVE_STATUSES)
        .filter(Q(first_report__in=reports) | Q(reopening__isnull=False))
        .annotate(reopened_by=F("reopening__report_id"))
        .select_related("team", "image")
    )
    findings: dict[int, Finding] = {}
    pairs: set[tuple[uuid.UUID, int]] = set()
    for finding in rows:
        findings.setdefault(finding.pk, finding)
        for report_id in (finding.first_report_id, finding.reopened_by):  # type: ignore[attr-defined]
            if report_id in by_pk:
                pairs.add((report_id, finding.pk))
    return [(by_pk[report_id], findings[finding_id]) for report_id, finding_id in sorted(pairs)]


def _new_critical(reports: list[Report]) -> list[Draft]:
    """New or reopened critical or KEV findings, one message per report and team."""
    groups: dict[tuple[str, int], list[Finding]] = defaultdict(list)
    by_key: dict[tuple[str, int], tuple[Report, Team]] = {}
    for report, finding in _brought(reports):
        key = (str(report.pk), finding.team_id or 0)
        if finding not in groups[key]:
            groups[key].append(finding)
        by_key[key] = (report, finding.team)  # type: ignore[assignment]
    drafts = []
    for key, findings in groups.items():
        report, team = by_key[key]
        n = len(findings)
        subject = f"Vigil: {n} new critical or KEV finding{'s' if n != 1 else ''} for {team.name}"
        why = f"Why: the {_report_label(report)} brought {n} critical or KEV finding{'s' if n != 1 else ''} that {team.name} owns."
        drafts.append(
            _finding_draft(
                event=NotificationEvent.NEW_CRITICAL, team=team, group=f"report:{report.pk}", subject=subject, why=why,
                findings=sorted(findings, key=lambda f: -f.risk_score), query={"report": str(report.pk), "status": "active"},
            )
        )  # fmt: skip
    return drafts


def _event_alerts(reports: list[Report], policies: dict[int, EnforcementPolicy]) -> list[Draft]:
    """Admission denials in production and high-severity runtime alerts carried by event reports.

    One message per report and team, unless the same findings were already told within the same hour.
    """
    sightings = (
        EventSighting.objects.filter(report__in=reports, finding__stream__in=[Stream.ADMISSION, Stream.RUNTIME])
        .select_related("finding__image", "team", "report")
        .order_by("report_id", "finding_id")
    )
    groups: dict[tuple[str, str, int], list[Finding]] = defaultdict(list)
    teams: dict[int, Team] = {}
    hours: dict[str, str] = {}
    for sighting in sightings:
        finding, event = sighting.finding, ""
        if finding.team_id != sighting.team_id:
            continue  # re-assigned since: the finding is no longer this team's
        if finding.stream == Stream.RUNTIME and finding.severity in HIGH:
            event = NotificationEvent.RUNTIME_ALERT
        elif finding.stream == Stream.ADMISSION and is_production(
            team_id=sighting.team_id, namespace=finding.resource_namespace, policies=policies
        ):
            event = NotificationEvent.ADMISSION_DENIAL
        else:
            continue
        teams[sighting.team_id] = sighting.team
        groups[(event, str(sighting.report_id), sighting.team_id)].append(finding)
        hours[str(sighting.report_id)] = timezone.localtime(sighting.seen_at).strftime("%Y-%m-%dT%H")
    drafts = []
    for (event, report_id, team_id), findings in groups.items():
        team, n = teams[team_id], len(findings)
        if event == NotificationEvent.RUNTIME_ALERT:
            subject = f"Vigil: {n} high-severity runtime alert{'s' if n != 1 else ''} for {team.name}"
            why = f"Why: the runtime stream reported {n} high or critical alert{'s' if n != 1 else ''} on {team.name}'s workloads."
            query = {"stream": Stream.RUNTIME, "severity": "critical,high", "report": report_id}
        else:
            subject = f"Vigil: {n} admission denial{'s' if n != 1 else ''} in production for {team.name}"
            why = f"Why: {n} deploy{'s were' if n != 1 else ' was'} denied in a production namespace of {team.name}."
            query = {"stream": Stream.ADMISSION, "report": report_id}
        # The same alerts again within the hour (a noisy rule fires once a second) are not a new message.
        same = hashlib.sha256(",".join(str(f.pk) for f in sorted(findings, key=lambda f: f.pk)).encode()).hexdigest()[:16]
        group = f"{hours[report_id]}:{same}"
        drafts.append(_finding_draft(event=event, team=team, group=group, subject=subject, why=why, findings=findings, query=query))
    return drafts


def _report_problems(reports: list[Report]) -> list[Draft]:
    drafts = []
    for report in reports:
        if report.team is None:
            continue
        link = absolute(reverse("report", args=[report.pk]))
        if report.status == ReportStatus.FAILED:
            subject = f"Vigil: a report for {report.team.name} failed"
            lines = [f"Why: the {_report_label(report)} failed: {(report.error or 'no reason recorded')[:300]}", "", f"Report: {link}"]
            drafts.append(Draft(NotificationEvent.REPORT_PROBLEM, report.team, f"failed:{report.pk}", subject, lines, link, 1))
        elif report.held_closures:
            n = len(report.held_closures)
            subject = f"Vigil: a report for {report.team.name} holds {n} closure{'s' if n != 1 else ''} for you to confirm"
            lines = [
                f"Why: the {_report_label(report)} would close more than half of the open findings in its scope;",
                f"its {n} closure{'s wait' if n != 1 else ' waits'} for a person to confirm.",
                "",
                f"Confirm or leave them open: {link}",
            ]
            drafts.append(Draft(NotificationEvent.REPORT_PROBLEM, report.team, f"held:{report.pk}", subject, lines, link, n))
    return drafts


def _gate_denials(*, since: dt.datetime, until: dt.datetime) -> list[Draft]:
    """Vigil's own admission webhook refused a deploy (decision fail: the namespace's mode is enforce)."""
    decisions = GateDecision.objects.filter(
        point=GateDecision.Point.ADMISSION, decision=GateOutcome.FAIL, team__isnull=False, created_at__gt=since, created_at__lte=until
    ).select_related("team")
    groups: dict[tuple[int, str, str, str], list[GateDecision]] = defaultdict(list)
    for decision in decisions:
        hour = timezone.localtime(decision.created_at).strftime("%Y-%m-%dT%H")
        groups[(decision.team_id or 0, decision.namespace, decision.image_ref, hour)].append(decision)
    drafts = []
    for (_, namespace, image_ref, hour), found in groups.items():
        team, n = found[0].team, len(found)
        if team is None:
            continue
        link = absolute(reverse("policies"))
        where = f" in namespace {namespace}" if namespace else ""
        subject = f"Vigil: admission denied {image_ref}{where} ({team.name})"
        reasons = sorted({str(reason.get("rule_id", "")) for decision in found for reason in decision.reasons if reason.get("rule_id")})
        lines = [
            f"Why: {team.name}'s policy refused to deploy {image_ref}{where} {n} time{'s' if n != 1 else ''} this hour.",
            *([f"Findings that blocked it: {', '.join(reasons[:LISTED])}"] if reasons else []),
            "",
            f"Decisions and the policy: {link}",
        ]
        group = f"gate:{namespace}:{image_ref}:{hour}"
        drafts.append(Draft(NotificationEvent.ADMISSION_DENIAL, team, group[:200], subject[:300], lines, link, n))
    return drafts


def _daily(today: dt.date) -> list[Draft]:
    """Findings whose SLA breaches tomorrow (one message per team and day); acceptances expiring within 7 days."""
    tomorrow = today + dt.timedelta(days=1)
    due: dict[int, list[Finding]] = defaultdict(list)
    teams: dict[int, Team] = {}
    soon = Finding.objects.filter(due_date=tomorrow, status__in=ACTIVE_STATUSES, team__isnull=False).select_related("team", "image")
    for finding in soon:
        due[finding.team_id or 0].append(finding)
        teams[finding.team_id or 0] = finding.team  # type: ignore[assignment]
    drafts = []
    for team_id, findings in due.items():
        team, n = teams[team_id], len(findings)
        drafts.append(
            _finding_draft(
                event=NotificationEvent.SLA_TOMORROW, team=team, group=f"day:{today.isoformat()}",
                subject=f"Vigil: {n} finding{'s' if n != 1 else ''} of {team.name} breach{'' if n != 1 else 'es'} the SLA tomorrow",
                why=f"Why: {n} open finding{'s are' if n != 1 else ' is'} due on {tomorrow.isoformat()}.",
                findings=findings, query={"sla": "due_soon", "status": "active"},
            )
        )  # fmt: skip
    expiring = RiskAcceptance.objects.filter(
        state=RiskAcceptance.State.APPROVED, team__isnull=False, expires__gte=today, expires__lte=today + dt.timedelta(days=7)
    ).select_related("team")
    for acceptance in expiring:
        owner = acceptance.team
        if owner is None:
            continue
        link = absolute(reverse("findings"), team=owner.slug, acceptance=str(acceptance.pk), status="risk_accepted")
        lines = [
            f"Why: risk acceptance #{acceptance.pk} of {owner.name} expires on {acceptance.expires.isoformat()}; "
            "its findings reopen then unless someone renews it.",
            f"Reason given: {acceptance.reason[:300]}",
            "",
            f"Its findings: {link}",
        ]
        subject = f"Vigil: a risk acceptance of {owner.name} expires on {acceptance.expires.isoformat()}"
        group = f"acceptance:{acceptance.pk}:{acceptance.expires.isoformat()}"
        drafts.append(Draft(NotificationEvent.ACCEPTANCE_EXPIRING, owner, group, subject, lines, link, acceptance.findings.count()))
    return drafts


def _daily_once(now: dt.datetime) -> list[Draft]:
    today = timezone.localdate(now)
    yesterday = now - dt.timedelta(days=1)
    daily, _ = NotificationCursor.objects.select_for_update().get_or_create(name=DAILY_CURSOR, defaults={"position": yesterday})
    if timezone.localdate(daily.position) >= today:
        return []
    daily.position = now
    daily.save(update_fields=["position"])
    return _daily(today)


def notifications_write(drafts: Iterable[Draft], *, now: dt.datetime) -> int:
    """One outbox row per draft and active channel of its team subscribed to its event; returns how many are new."""
    drafts = list(drafts)
    channels: dict[int, list[NotificationChannel]] = defaultdict(list)
    for channel in NotificationChannel.objects.filter(active=True, team_id__in={d.team.pk for d in drafts}):
        channels[channel.team_id].append(channel)
    rows = [
        Notification(
            key=f"{draft.event}:{draft.team.pk}:{draft.group}:c{channel.pk}", event=draft.event, team=draft.team, channel=channel,
            subject=draft.subject[:300], text="\n".join(draft.lines), link=draft.link[:1000], count=draft.count,
            next_attempt_at=now, created_at=now,
        )
        for draft in drafts
        for channel in channels.get(draft.team.pk, [])
        if draft.event in channel.events
    ]  # fmt: skip
    before = Notification.objects.filter(key__in=[row.key for row in rows]).count()
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return Notification.objects.filter(key__in=[row.key for row in rows]).count() - before


def notifications_scan(*, now: dt.datetime | None = None) -> int:
    """Write what happened since the last scan to the outbox (idempotent); returns how many notifications are new."""
    now = now or timezone.now()
    with transaction.atomic():
        cursor, _ = NotificationCursor.objects.select_for_update().get_or_create(name=CURSOR, defaults={"position": now - LOOKBACK})
        since = min(cursor.position, now) - LOOKBACK
        window = Report.objects.filter(finished_at__gt=since, finished_at__lte=now, status__in=[ReportStatus.DONE, ReportStatus.FAILED])
        in_window = {str(pk) for pk in window.values_list("pk", flat=True)}
        # Reports read by an earlier scan are not read again (the keys would make that harmless, but not free).
        fresh = in_window - set(cursor.seen or [])
        reports = list(Report.objects.filter(pk__in=sorted(fresh)).select_related("team").order_by("finished_at"))
        policies = {p.team_id: p for p in EnforcementPolicy.objects.filter(team__isnull=False).exclude(namespace_modes={}) if p.team_id}
        done = [report for report in reports if report.status == ReportStatus.DONE]
        drafts = [
            *_new_critical(done),
            *_event_alerts(done, policies),
            *_report_problems(reports),
            *_gate_denials(since=since, until=now),
            *_daily_once(now),
        ]
        created = notifications_write(drafts, now=now)
        cursor.position, cursor.seen = max(cursor.position, now), sorted(in_window)
        cursor.save(update_fields=["position", "seen"])
    return created
