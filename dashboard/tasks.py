"""Celery tasks: thin, explicitly named wrappers around services; they take ids, not payloads."""

from __future__ import annotations

from celery import shared_task

from dashboard.services import reports, snapshots


@shared_task(name=reports.PROCESS_TASK, acks_late=True, reject_on_worker_lost=True)
def process_report(report_id: str) -> None:
    reports.report_process(report_id)


@shared_task(name="vigil.reports.sweep")
def sweep_reports() -> None:
    reports.report_sweep()


@shared_task(name="vigil.snapshots.take")
def take_snapshots() -> None:
    snapshots.snapshot_take()
