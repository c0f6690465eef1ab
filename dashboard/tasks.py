"""Celery tasks: thin, explicitly named wrappers around services; they take ids, not payloads.

Names are part of the queue contract: queued messages must survive refactors.
"""

from __future__ import annotations

from celery import shared_task

from dashboard.services import (
    active_counts,
    base_image_counts,
    digest,
    events,
    intel,
    notification_delivery,
    notifications,
    nudges,
    ownership_rules,
    posture_digest,
    report_processing,
    reports,
    request_signing,
    retention,
    risk_acceptance,
    running,
    snapshots,
    tickets,
)
from dashboard.trackers import TrackerError

#: At-least-once delivery of a report's processing: acknowledged after the work, retried on database errors.
_REPORT_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": report_processing.DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 30,
    "max_retries": 5,
}


@shared_task(name=reports.PROCESS_TASK, **_REPORT_TASK_OPTIONS)
def process_report(report_id: str) -> None:
    report_processing.report_process(report_id)


@shared_task(name=reports.EVENTS_TASK, **_REPORT_TASK_OPTIONS)
def process_event_report(report_id: str) -> None:
    """The same as process_report, routed to the events queue (settings.CELERY_TASK_ROUTES)."""
    report_processing.report_process(report_id)


@shared_task(name="vigil.reports.sweep")
def sweep_reports() -> None:
    reports.report_sweep()


@shared_task(name="vigil.snapshots.take")
def take_snapshots() -> None:
    snapshots.snapshot_take()
    base_image_counts.base_image_counts_refresh()
    active_counts.active_counts_fold()


@shared_task(name="vigil.events.resolve_quiet")
def resolve_quiet_events() -> None:
    events.resolve_quiet_events()


# --- Ownership and tokens ---------------------------------------------------------


@shared_task(
    name=ownership_rules.REASSIGN_TASK, acks_late=True, autoretry_for=report_processing.DATABASE_ERRORS, retry_backoff=2, max_retries=5
)
def reassign_ownership(rule_id: int) -> None:
    """Re-apply ownership rules to the findings a change of this rule affects (idempotent)."""
    ownership_rules.ownership_reassign(rule_id=rule_id)


@shared_task(name="vigil.tokens.prune_signatures")
def prune_signatures() -> None:
    request_signing.signatures_prune()


@shared_task(name=retention.PRUNE_TASK)
def prune_retention() -> None:
    retention.retention_prune()


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


@shared_task(name=running.RESCORE_TASK, acks_late=True, autoretry_for=report_processing.DATABASE_ERRORS, retry_backoff=2, max_retries=5)
def rescore_running_images(image_ids: list[int]) -> None:
    """Re-score the findings of images that started running (idempotent)."""
    running.rescore_images(image_ids=image_ids)


@shared_task(name="vigil.running.refresh")
def refresh_running() -> None:
    """Re-score findings whose image stopped or started running since they were scored (idempotent)."""
    running.running_refresh()


# --- Notifications -------------------------------------------------------------------------


#: At least once: acknowledged after the work; a notification is marked sent only once its receiver accepted it.
_NOTIFY_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": report_processing.DATABASE_ERRORS,
                        "retry_backoff": 2, "retry_backoff_max": 30, "max_retries": 5}  # fmt: skip


@shared_task(name="vigil.notifications.run", **_NOTIFY_TASK_OPTIONS)
def run_notifications() -> None:
    """Every minute: write what needs a person now to the outbox (idempotent), then send what is due."""
    notifications.notifications_scan()
    notification_delivery.notifications_deliver()


@shared_task(name="vigil.notifications.posture_digest", **_NOTIFY_TASK_OPTIONS)
def queue_posture_digest() -> None:
    """The managers' weekly posture digest (once per manager and week), sent by the next run."""
    posture_digest.posture_digest_queue()


# --- Tickets -------------------------------------------------------------------------


@shared_task(
    name=tickets.CREATE_TASK,
    acks_late=True,
    autoretry_for=(TrackerError, *report_processing.DATABASE_ERRORS),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def create_ticket(ticket_id: int) -> None:
    """Create a requested ticket in its team's tracker (idempotent: a created ticket is left alone)."""
    tickets.ticket_create(ticket_id=ticket_id)
