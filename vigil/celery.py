"""Celery application.  Tasks live in dashboard/tasks.py and are named explicitly."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["dashboard"])


@task_prerun.connect
@task_postrun.connect
def _recycle_old_database_connections(**_: object) -> None:
    """Treat a task like Django treats a request: reuse the thread's database connection up to CONN_MAX_AGE,
    health-checked before use (so one broken by a PostgreSQL restart is replaced, not reused).

    Celery's Django fixup otherwise closes every connection before and after every task (unless
    CELERY_DB_REUSE_MAX is set, see settings): a new PostgreSQL backend for each of them, which cost a
    stream of alerts' tasks (most find their report applied in a batch already) 4 ms each in connecting.
    """
    from django.db import close_old_connections

    close_old_connections()
