"""Readiness: do the database and the broker answer, and are the migrations applied?

Each check answers "" when all is well, else what is wrong, and never raises: a probe must get an answer.  The
liveness probe (/healthz) checks none of this: a web process whose database is down is alive, just not ready.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from kombu.exceptions import ChannelError, KombuError
from redis.exceptions import RedisError

from dashboard.db.ping import database_ping

#: What the transport raises when the broker does not answer.
BROKER_ERRORS = (OSError, KombuError, RedisError)


def database_problem() -> str:
    try:
        database_ping(connections[DEFAULT_DB_ALIAS])
    except DatabaseError as exc:  # the probe's answer names it
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return ""


def broker_problem() -> str:
    """The broker answers a connection (Redis: a PING), within the broker's connect timeout."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return ""  # no broker: tasks run in-process (the embedded default)
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
            client = getattr(conn.default_channel, "client", None)
            if client is not None:
                client.ping()
    except BROKER_ERRORS as exc:
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return ""


class _Migrations:
    #: Once every migration was found applied, this process stops looking (they are not unapplied under it).
    all_applied = False


def migrations_problem() -> str:
    """Unapplied migrations, named (checked until they are all applied once, then remembered per process)."""
    if _Migrations.all_applied:
        return ""
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        graph, applied = executor.loader.graph, executor.loader.applied_migrations
        # Every ancestor of every leaf, not migration_plan(): that plans nothing for a leaf already applied,
        # so a migration missing under applied ones would go unnoticed.
        missing = list(dict.fromkeys(node for leaf in graph.leaf_nodes() for node in graph.forwards_plan(leaf) if node not in applied))
    except DatabaseError as exc:  # the database is down: database_problem says so too
        return f"could not read the applied migrations ({type(exc).__name__})"
    if missing:
        names = ", ".join(f"{app}.{name}" for app, name in missing[:5])
        return f"{len(missing)} migration(s) not applied: {names}"
    _Migrations.all_applied = True
    return ""


def forget_applied_migrations() -> None:
    """Look at the migrations again on the next check."""
    _Migrations.all_applied = False


def readiness() -> dict[str, str]:
    """Each check's problem ("" for none), by name."""
    return {"database": database_problem(), "broker": broker_problem(), "migrations": migrations_problem()}


def queue_depths() -> dict[str, int]:
    """Messages waiting in each of Vigil's queues (settings.VIGIL_QUEUES), by queue name; {} without a broker or when
    it does not answer (the scrape still shows every other metric)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {}
    depths: dict[str, int] = {}
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
            channel = conn.default_channel
            for queue in sorted(set(settings.VIGIL_QUEUES.values())):
                depths[queue] = _depth(channel, queue)
    except BROKER_ERRORS:  # the broker is down: /readyz says so; the depth is left out
        return {}
    return depths


def _depth(channel: Any, queue: str) -> int:
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:  # a queue never declared, or emptied and removed (Redis): nothing waits
        return 0
