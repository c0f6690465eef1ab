"""Recognise a repeated scan and record it without parsing it.

CI re-runs the same Trivy/Grype/CycloneDX scan of the same image many times a day.  When a report's
``stable_sha256`` (its bytes with run timestamps and ids blanked, scanners/digest.py) equals that of the
report last applied to every one of its scopes, applying it again would change nothing: the same findings
with the same content, nothing to close, nothing to reopen.  It is then recorded as done with every
finding unchanged, without being parsed, provided that since that report:

- no other report was applied to any of its scopes (``LifecycleScope.last_report``),
- nobody changed the status of a finding in those scopes (``status_changed_at``),
- no finding in those scopes needs its "last seen" moved forward (images.LAST_SEEN_STEP),
- the earlier report held no closures for confirmation,
- it was sent by the same sender, and every finding of those scopes is one that sender may change (a
  repeat about another team's findings takes the full path, which leaves them alone and counts them).

Otherwise the report takes the normal path (parse and apply), which gives the same result, slower.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from dashboard.ingest.rights import report_sender_rights
from dashboard.ingest.scopes import lock_scopes, mark_applied
from dashboard.models import Finding, FindingEvent, Report, ReportStatus, Status
from dashboard.services.images import LAST_SEEN_STEP
from scanners import registry
from scanners.digest import STABLE_FORMATS


def _earlier(report: Report) -> Report | None:
    """The last applied report with the same stable digest, sender, team, declared format, image and stream."""
    candidates = Report.objects.filter(
        stable_sha256=report.stable_sha256,
        token=report.token_id,
        submitted_by=report.submitted_by_id,
        team=report.team_id,
        team_named=report.team_named,
        declared_format=report.declared_format,
        image_ref=report.image_ref,
        cluster=report.cluster,
        status=ReportStatus.DONE,
        format__in=STABLE_FORMATS,
    ).exclude(pk=report.pk)
    if report.stream:
        candidates = candidates.filter(stream=report.stream)
    return candidates.order_by("-finished_at").first()


def _named_by(report: Report) -> list[int]:
    """Every finding an applied report named: those it left unchanged, created or reopened."""
    created = Finding.objects.filter(first_report=report).values_list("id", flat=True)
    reopened = FindingEvent.objects.filter(report=report, type=FindingEvent.Type.REOPENED).values_list("finding_id", flat=True)
    return sorted({*report.unchanged_ids, *created, *reopened})


def report_repeat(*, report: Report, now: dt.datetime | None = None) -> Report | None:
    """Record a claimed (processing) report as a repeat of the last one of its scopes, if it is one.

    Returns the report, done, or None when it has to be parsed and applied.
    """
    now = now or timezone.now()
    if not report.stable_sha256 or report.declared_format in registry.ALWAYS_PARSED:
        return None
    earlier = _earlier(report)
    if earlier is None or earlier.held_closures or not earlier.scopes or earlier.finished_at is None or earlier.counts.get("not_yours"):
        return None
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        if locked.status != ReportStatus.PROCESSING:
            return None
        last = lock_scopes(earlier.scopes)
        if any(last.get(key) != earlier.pk for key in earlier.scopes):
            return None  # another report was applied to one of the scopes since
        findings = Finding.objects.filter(scope_key__in=earlier.scopes)
        if findings.filter(status_changed_at__gt=earlier.finished_at).exists():
            return None  # a person (or a rule, or the quiet-period sweep) changed a status since
        if findings.exclude(status=Status.FIXED).filter(last_seen__lt=now - LAST_SEEN_STEP).exists():
            return None  # the full path moves "last seen" forward
        rights = report_sender_rights(locked)
        if not rights.everything and findings.exclude(team__isnull=True).exclude(team_id__in=rights.team_ids).exists():
            return None  # another team's findings (moved there since, by a rule): the full path leaves them alone
        mark_applied(earlier.scopes, report=locked)
        locked.format, locked.stream, locked.image_id = earlier.format, earlier.stream, earlier.image_id
        locked.image_tag, locked.image_digest = earlier.image_tag, earlier.image_digest
        locked.scopes = earlier.scopes
        locked.findings_total = earlier.findings_total
        locked.counts = {"new": 0, "reopened": 0, "unchanged": earlier.findings_total, "fixed": 0}
        locked.unchanged_ids = _named_by(earlier)
        locked.held_closures = []
        locked.status = ReportStatus.DONE
        locked.error = ""
        locked.finished_at = timezone.now()
        locked.save()
    return locked
