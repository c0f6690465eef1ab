"""Publishing a Celery task from a web worker for less CPU: one producer per thread, kept across requests.

``app.send_task`` acquires a producer from the pool, merges the task's routing and execution options and sends
the publish signals on every call: 0.46-0.51 ms of CPU here, more than the INSERT that stores a Falco alert.
``publish_task`` builds the same message with ``app.amqp.create_task_message`` (the same headers, body and
properties: a test compares them, and the worker cannot tell them apart) and publishes it on a producer the
thread keeps, made from the same broker settings (connect and socket timeouts, no retry): 0.32-0.34 ms.  A
publish that fails drops the producer and its connection, so the next publish connects again; the caller
decides what a failure means (``receive.enqueue``: the sweeper re-enqueues).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from kombu import Producer
from kombu.utils.uuid import uuid

from dashboard import log_context


class _Kept(threading.local):
    producer: Producer | None = None
    pid: int = 0
    #: The Redis client that keeps the pending marks (``publish_unless_pending``), and the process it was made in.
    marks: Any = None
    marks_pid: int = 0
    #: Per queue: the publish options send_task works out from the configuration, looked up once per producer.
    options: dict[str, dict[str, Any]]


_kept = _Kept()


class TASKS:
    """Every Celery task name, in one place (``dashboard/tasks.py`` registers them, the beat schedule in
    ``vigil/settings.py`` names the periodic ones).  Names are stable so queued messages survive refactors."""

    PROCESS_REPORT = "vigil.reports.process"
    #: The same processing for event reports (Falco alerts, admission reviews), under its own name: it is routed to
    #: the events queue, so alerts never wait behind a long scan.
    PROCESS_EVENTS = "vigil.events.process"
    SWEEP_REPORTS = "vigil.reports.sweep"
    RESOLVE_QUIET_EVENTS = "vigil.events.resolve_quiet"
    #: Every minute: the admission webhook's repeated events become event reports counting them.
    FLUSH_ADMISSION_REPEATS = "vigil.admission.flush_repeats"
    #: Every minute: the record of changes to what decisions read, one row per image (db/decision_changes.py).
    FOLD_DECISION_CHANGES = "vigil.enforcement.fold_changes"
    TAKE_SNAPSHOTS = "vigil.snapshots.take"
    REASSIGN_OWNERSHIP = "vigil.ownership.reassign"
    PRUNE_SIGNATURES = "vigil.tokens.prune_signatures"
    COMPUTE_NUDGES = "vigil.nudges.compute"
    WEEKLY_DIGEST = "vigil.nudges.weekly_digest"
    EXPIRE_ACCEPTANCES = "vigil.triage.expire_acceptances"
    REFRESH_INTEL = "vigil.intel.refresh"
    RESCORE_IMAGES = "vigil.running.rescore_images"
    REFRESH_RUNNING = "vigil.running.refresh"
    PRUNE_RETENTION = "vigil.retention.prune"
    RUN_NOTIFICATIONS = "vigil.notifications.run"
    POSTURE_DIGEST = "vigil.notifications.posture_digest"
    CREATE_TICKET = "vigil.tickets.create"


def enqueue(name: str, args: list[Any]) -> str:
    """Publish task ``name`` (one of ``TASKS``) with ``args`` on the queue Celery routes it to; the one way
    services publish work (by name: services never import ``dashboard.tasks``).  Raises what the broker raised:
    the caller decides what a failure means.  Returns the task id."""
    return publish_task(name, args, queue=task_queue(name))


def publish_task(name: str, args: list[Any], *, queue: str) -> str:
    """Publish task ``name`` with positional ``args`` on ``queue`` (as ``send_task(name, args, queue=queue, retry=False)``).

    Returns the task id; raises what the broker raised (after dropping the producer).
    """
    app = current_app
    producer = _producer(app)
    options = _kept.options.get(queue) or _options(app, queue)
    task_id = uuid()
    headers, properties, body, _ = app.amqp.create_task_message(task_id, name, args, {}, reply_to=app.thread_oid, ignore_result=None)
    log_context.carry_request_id(headers)
    try:
        producer.publish(body, headers=headers, retry=False, **options, **properties)
    except BaseException:
        drop_producer()
        raise
    return task_id


def publish_unless_pending(name: str, args: list[Any], *, key: str, seconds: int) -> bool:
    """Publish task ``name`` unless one published under ``key`` is still pending; True when this call published.

    The mark is a Redis key set only if absent (``SET NX EX``) and cleared by the task when it starts
    (``pending_clear``), so whatever is stored before the task starts is the task's to find.  It expires after
    ``seconds``, so a message lost with its mark still set holds nothing up for longer; a publish that fails
    clears the mark at once.  Without a Redis broker, or when Redis does not answer, it publishes as usual.
    """
    client = _marks()
    if client is not None:
        try:
            if not client.set(key, b"1", nx=True, ex=seconds):
                return False
        except Exception:  # noqa: BLE001 - a publish too many is harmless, one too few is not
            _kept.marks = None
    try:
        publish_task(name, args, queue=task_queue(name))
    except BaseException:
        pending_clear(key)
        raise
    return True


def pending_clear(key: str) -> None:
    """Clear a pending mark (``publish_unless_pending``); never raises (the mark expires anyway)."""
    client = _marks()
    if client is not None:
        try:
            client.delete(key)
        except Exception:  # noqa: BLE001
            _kept.marks = None


def _marks() -> Any:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith(("redis://", "rediss://")):
        return None
    pid = os.getpid()
    if _kept.marks is None or _kept.marks_pid != pid:
        _kept.marks = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        _kept.marks_pid = pid
    return _kept.marks


def task_queue(name: str) -> str:
    """The queue task ``name`` is routed to (CELERY_TASK_ROUTES, else the default queue), as Celery routes it."""
    route = settings.CELERY_TASK_ROUTES.get(name) or {}
    return str(route.get("queue") or settings.CELERY_TASK_DEFAULT_QUEUE)


def _producer(app: Any) -> Producer:
    pid = os.getpid()
    if _kept.producer is None or _kept.pid != pid:  # a forked process makes its own connection
        _kept.producer = None
        _kept.options = {}
        _kept.producer = app.connection_for_write().Producer()
        _kept.pid = pid
    return _kept.producer


def _options(app: Any, queue: str) -> dict[str, Any]:
    target = app.amqp.queues[queue]
    options = _kept.options[queue] = {
        "exchange": "",  # the default exchange, routed by queue name, as send_task does for a direct queue
        "routing_key": target.name,
        "serializer": app.conf.task_serializer,
        "compression": app.conf.task_compression,
        "delivery_mode": target.exchange.delivery_mode or app.conf.task_default_delivery_mode,
        "declare": [target],  # declared once per connection (kombu remembers)
    }
    return options


def drop_producer() -> None:
    """Forget this thread's producer and close its connection (the next publish connects again)."""
    producer, _kept.producer = _kept.producer, None
    if producer is not None:
        with contextlib.suppress(Exception):
            producer.connection.release()


def load_transport() -> None:
    """Import the broker's transport now (when a web worker starts), not during its first publish: that import
    took 0.13 s of the first report a fresh worker received.  Nothing connects."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        _ = current_app.connection_for_write().transport
