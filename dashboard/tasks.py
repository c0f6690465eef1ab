"""Celery tasks: thin, explicitly named wrappers around services; they take ids, not payloads.

Names are part of the queue contract: queued messages must survive refactors.
"""

from __future__ import annotations

from celery import shared_task

from dashboard.ingest import claim, quiet, receive, signing
from dashboard.services import digest, intel, nudges, ownership_rules, risk_acceptance, running, snapshots

#: At-least-once delivery of a report's processing: acknowledged after the work, retried on database errors.
_REPORT_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": claim.DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 30,
    "max_retries": 5,
}


@shared_task(name=receive.PROCESS_TASK, **_REPORT_TASK_OPTIONS)
def process_report(report_id: str) -> None:
    claim.report_process(report_id)


@shared_task(name=receive.EVENTS_TASK, **_REPORT_TASK_OPTIONS)
def process_event_report(report_id: str) -> None:
    """The same as process_report, routed to the events queue (settings.CELERY_TASK_ROUTES)."""
    claim.report_process(report_id)


@shared_task(name="vigil.reports.sweep")
def sweep_reports() -> None:
    receive.report_sweep()


@shared_task(name="vigil.snapshots.take")
def take_snapshots() -> None:
    snapshots.snapshot_take()


@shared_task(name="vigil.events.resolve_quiet")
def resolve_quiet_events() -> None:
    quiet.resolve_quiet_events()


# --- Ownership and tokens ---------------------------------------------------------


@shared_task(name=ownership_rules.REASSIGN_TASK, acks_late=True, autoretry_for=claim.DATABASE_ERRORS, retry_backoff=2, max_retries=5)
def reassign_ownership(rule_id: int) -> None:
    """Re-apply ownership rules to the findings a change of this rule affects (idempotent)."""
    ownership_rules.ownership_reassign(rule_id=rule_id)


@shared_task(name="vigil.tokens.prune_signatures")
def prune_signatures() -> None:
    signing.signatures_prune()


# --- Training nudges -----------------------------------------------------------------


@shared_task(name=nudges.COMPUTE_TASK)
def compute_nudges() -> None:
    """Run the nudge rules for every team (idempotent: running it twice at once makes nothing new)."""
    nudges.nudges_compute()


@shared_task(name=nudges.DIGEST_TASK)
def send_nudge_digest() -> None:
    """Send this week's digests not sent yet (email per champion, webhook per team); idempotent per week."""
    digest.digest_send_weekly()


# --- Triage ---------------------------------------------------------------------------


@shared_task(name="vigil.triage.expire_acceptances")
def expire_acceptances() -> None:
    """Expire risk acceptances past their date: their findings reopen, champions are emailed (idempotent)."""
    risk_acceptance.acceptances_expire()


@shared_task(name="vigil.intel.refresh")
def refresh_intel() -> None:
    """Download and import KEV and EPSS from VIGIL_KEV_URL / VIGIL_EPSS_URL (scheduled only when one is set)."""
    intel.intel_refresh()


# --- What runs (admission sightings, trivy-operator, Falco) ---------------------------------------


@shared_task(name=running.RESCORE_TASK, acks_late=True, autoretry_for=claim.DATABASE_ERRORS, retry_backoff=2, max_retries=5)
def rescore_running_images(image_ids: list[int]) -> None:
    """Re-score the findings of images that started running (idempotent)."""
    running.rescore_images(image_ids=image_ids)


@shared_task(name="vigil.running.refresh")
def refresh_running() -> None:
    """Re-score findings whose image stopped or started running since they were scored (idempotent)."""
    running.running_refresh()
