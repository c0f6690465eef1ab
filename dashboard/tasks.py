"""Celery tasks: thin, explicitly named wrappers around services; they take ids, not payloads.

Names are part of the queue contract: queued messages must survive refactors.
"""

from __future__ import annotations

from celery import shared_task

from dashboard.db import active_counts, decision_changes
from dashboard.ingest import claim, quiet, receive, signing
from dashboard.ingest.publish import TASKS
from dashboard.services import (
    admission_repeats,
    base_image_counts,
    digest,
    intel,
    notification_delivery,
    notifications,
    nudges,
    ownership_rules,
    posture_digest,
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
    "autoretry_for": claim.DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 30,
    "max_retries": 5,
}


@shared_task(name=TASKS.PROCESS_REPORT, **_REPORT_TASK_OPTIONS)
def process_report(report_id: str) -> None:
    claim.report_process(report_id)


@shared_task(name=TASKS.PROCESS_EVENTS, **_REPORT_TASK_OPTIONS)
def process_event_report(report_id: str, received_stream: str | None = None) -> None:
    """An event report and every queued event report of its sender, in batches (routed to the events queue,
    settings.CELERY_TASK_ROUTES); published once per burst of alerts, not once per alert (claim.events_process)."""
    claim.events_process(report_id, received_stream)


@shared_task(name=TASKS.SWEEP_REPORTS)
def sweep_reports() -> None:
    receive.report_sweep()


@shared_task(name=TASKS.TAKE_SNAPSHOTS)
def take_snapshots() -> None:
    snapshots.snapshot_take()
    base_image_counts.base_image_counts_refresh()
    active_counts.active_counts_fold()


@shared_task(name=TASKS.RESOLVE_QUIET_EVENTS)
def resolve_quiet_events() -> None:
    quiet.resolve_quiet_events()


@shared_task(name=TASKS.FLUSH_ADMISSION_REPEATS)
def flush_admission_repeats() -> None:
    """Every minute: the admission webhook's repeats become event reports counting them (at least once, idempotent)."""
    admission_repeats.repeats_flush()


@shared_task(name=TASKS.FOLD_DECISION_CHANGES)
def fold_decision_changes() -> None:
    """Every minute: keep the decision memo's record of changes short (one statement; a reader sees it whole)."""
    decision_changes.decision_changes_fold()


# --- Ownership and tokens ---------------------------------------------------------


@shared_task(name=TASKS.REASSIGN_OWNERSHIP, acks_late=True, autoretry_for=claim.DATABASE_ERRORS, retry_backoff=2, max_retries=5)
def reassign_ownership(rule_id: int) -> None:
    """Re-apply ownership rules to the findings a change of this rule affects (idempotent)."""
    ownership_rules.ownership_reassign(rule_id=rule_id)


@shared_task(name=TASKS.PRUNE_SIGNATURES)
def prune_signatures() -> None:
    signing.signatures_prune()


@shared_task(name=TASKS.PRUNE_RETENTION)
def prune_retention() -> None:
    retention.retention_prune()


# --- Training nudges -----------------------------------------------------------------


@shared_task(name=TASKS.COMPUTE_NUDGES)
def compute_nudges() -> None:
    """Run the nudge rules for every team (idempotent: running it twice at once makes nothing new)."""
    nudges.nudges_compute()


@shared_task(name=TASKS.WEEKLY_DIGEST)
def send_nudge_digest() -> None:
    """Send this week's digests not sent yet (email per champion, webhook per team); idempotent per week."""
    digest.digest_send_weekly()


# --- Triage ---------------------------------------------------------------------------


@shared_task(name=TASKS.EXPIRE_ACCEPTANCES)
def expire_acceptances() -> None:
    """Expire risk acceptances past their date: their findings reopen, champions are emailed (idempotent)."""
    risk_acceptance.acceptances_expire()


@shared_task(name=TASKS.REFRESH_INTEL)
def refresh_intel() -> None:
    """Download and import KEV and EPSS from VIGIL_KEV_URL / VIGIL_EPSS_URL (scheduled only when one is set)."""
    intel.intel_refresh()


# --- What runs (admission sightings, trivy-operator, Falco) ---------------------------------------


@shared_task(name=TASKS.RESCORE_IMAGES, acks_late=True, autoretry_for=claim.DATABASE_ERRORS, retry_backoff=2, max_retries=5)
def rescore_running_images(image_ids: list[int]) -> None:
    """Re-score the findings of images that started running (idempotent)."""
    running.rescore_images(image_ids=image_ids)


@shared_task(name=TASKS.REFRESH_RUNNING)
def refresh_running() -> None:
    """Re-score findings whose image stopped or started running since they were scored (idempotent)."""
    running.running_refresh()


# --- Notifications -------------------------------------------------------------------------


#: At least once: acknowledged after the work; a notification is marked sent only once its receiver accepted it.
_NOTIFY_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "autoretry_for": claim.DATABASE_ERRORS,
                        "retry_backoff": 2, "retry_backoff_max": 30, "max_retries": 5}  # fmt: skip


@shared_task(name=TASKS.RUN_NOTIFICATIONS, **_NOTIFY_TASK_OPTIONS)
def run_notifications() -> None:
    """Every minute: write what needs a person now to the outbox (idempotent), then send what is due."""
    notifications.notifications_scan()
    notification_delivery.notifications_deliver()


@shared_task(name=TASKS.POSTURE_DIGEST, **_NOTIFY_TASK_OPTIONS)
def queue_posture_digest() -> None:
    """The managers' weekly posture digest (once per manager and week), sent by the next run."""
    posture_digest.posture_digest_queue()


# --- Tickets -------------------------------------------------------------------------


@shared_task(
    name=TASKS.CREATE_TICKET,
    acks_late=True,
    autoretry_for=(TrackerError, *claim.DATABASE_ERRORS),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def create_ticket(ticket_id: int) -> None:
    """Create a requested ticket in its team's tracker (idempotent: a created ticket is left alone)."""
    tickets.ticket_create(ticket_id=ticket_id)
