"""The worker keeps its database connection from task to task (vigil/celery.py), and replaces a broken one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from dashboard.models import Team
from vigil.celery import _recycle_old_database_connections, app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


def run_tasks(fixup: DjangoWorkerFixup, count: int) -> None:
    """What a worker does around each task: Celery's fixup, then ours (both on task_prerun and task_postrun)."""
    for _ in range(count):
        fixup.on_task_prerun(sender=TASK)
        _recycle_old_database_connections()
        Team.objects.exists()
        fixup.on_task_postrun(sender=TASK)
        _recycle_old_database_connections()


def test_tasks_reuse_the_workers_database_connection() -> None:
    connection.ensure_connection()
    opened = connection.connection

    run_tasks(DjangoWorkerFixup(app), 5)

    assert connection.connection is opened


def test_without_the_reuse_setting_celery_reconnects_for_every_task(settings) -> None:
    settings.CELERY_DB_REUSE_MAX = None
    connection.ensure_connection()
    opened = connection.connection

    run_tasks(DjangoWorkerFixup(app), 1)

    assert connection.connection is not opened


def test_a_broken_connection_is_replaced_before_the_next_task() -> None:
    connection.ensure_connection()
    broken = connection.connection
    broken.close()  # as a PostgreSQL restart leaves it
    connection.errors_occurred = True

    run_tasks(DjangoWorkerFixup(app), 1)

    assert connection.connection is not broken
    assert Team.objects.count() == 0
