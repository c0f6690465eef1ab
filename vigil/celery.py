"""Celery application.  Tasks live in dashboard/tasks.py and are named explicitly."""

import os
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from celery.signals import task_postrun, task_prerun, worker_ready

from vigil import liveness

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


class _WorkerHeartbeat(bootsteps.StartStopStep):
    """Touches the worker's heartbeat file from the worker's own timer (vigil/liveness.py)."""

    requires = {"celery.worker.components:Timer"}

    def start(self, worker: Any) -> None:
        liveness.beat("worker")
        self._tref = worker.timer.call_repeatedly(liveness.HEARTBEAT_SECONDS, liveness.beat, ("worker",), priority=10)

    def stop(self, worker: Any) -> None:
        self._tref.cancel()
        liveness.forget("worker")


app.steps["worker"].add(_WorkerHeartbeat)


class HeartbeatScheduler(PersistentScheduler):
    """Celery beat's scheduler, touching beat's heartbeat file on every tick (CELERY_BEAT_SCHEDULER)."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        liveness.beat("beat")
        interval: float = super().tick(*args, **kwargs)
        return min(interval, liveness.HEARTBEAT_SECONDS)  # tick at least this often, so the file stays fresh

    def close(self) -> None:
        super().close()
        liveness.forget("beat")


@worker_ready.connect
def _serve_worker_metrics(**_: object) -> None:
    """Serve this worker pod's metrics (reports done and failed, ingest lag, database time) on
    VIGIL_WORKER_METRICS_PORT, from the main process; with PROMETHEUS_MULTIPROC_DIR, its pool processes' too."""
    from django.conf import settings

    if settings.VIGIL_WORKER_METRICS_PORT:
        from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(settings.VIGIL_WORKER_METRICS_PORT, registry=registry)
