"""Celery application.  Tasks live in dashboard/tasks.py and are named explicitly."""

import os
from typing import Any

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from celery.signals import after_setup_logger, after_setup_task_logger, before_task_publish, task_postrun, task_prerun, worker_ready

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


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_like_the_web(logger: Any = None, **_: object) -> None:
    """The worker's and beat's handlers (Celery's own, to stderr or ``-f FILE``) redact secrets, carry the task and
    report ids and, with VIGIL_LOG_FORMAT=json, write the same JSON lines as the web (dashboard/log_context.py)."""
    from django.conf import settings

    from dashboard.log_context import ContextFilter, JsonFormatter
    from dashboard.log_redaction import RedactSecrets

    for handler in getattr(logger, "handlers", []):
        handler.addFilter(RedactSecrets())
        handler.addFilter(ContextFilter())
        if settings.VIGIL_LOG_FORMAT == "json":
            handler.setFormatter(JsonFormatter())


#: Tasks whose first argument is a report's id (dashboard/tasks.py).
_REPORT_TASKS = {"vigil.reports.process", "vigil.events.process"}


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: object) -> None:
    """For tasks sent with send_task/delay (dashboard/ingest/publish.py adds the header itself)."""
    from dashboard.log_context import carry_request_id

    if headers is not None:
        carry_request_id(headers)


@task_prerun.connect
def _bind_task_log_context(task_id: str = "", task: Any = None, args: Any = (), kwargs: Any = None, **_: object) -> None:
    """Every line a task logs names the task, its report when it processes one, and the request that queued it."""
    from dashboard.log_context import bind

    name = getattr(task, "name", "")
    report_id = (kwargs or {}).get("report_id") or (args[0] if name in _REPORT_TASKS and args else "")
    ids = {"task_id": task_id, "report_id": report_id}
    from dashboard.log_context import TASK_HEADER

    request_id = getattr(getattr(task, "request", None), TASK_HEADER, None)
    if request_id:  # run in-process (eager), the task keeps the id of the request it runs in
        ids["request_id"] = request_id
    if task is not None:  # on the execution's own context, not the task object that every execution shares
        task.request.vigil_log_tokens = bind(**ids)


@task_postrun.connect
def _unbind_task_log_context(task: Any = None, **_: object) -> None:
    from dashboard.log_context import unbind

    tokens = getattr(getattr(task, "request", None), "vigil_log_tokens", None)
    if tokens:
        task.request.vigil_log_tokens = None
        unbind(tokens)


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
