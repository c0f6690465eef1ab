"""Prometheus metrics: the metric objects, one place for every module that counts something, and the registry /metrics shows.

Web processes (gunicorn) and Celery worker processes count in their own memory; with PROMETHEUS_MULTIPROC_DIR set
(a fresh, writable folder per pod), the processes of one pod write their values there and a scrape adds them up
(prometheus_client's multiprocess mode).  Counters and histograms only: they need no clean-up when a process exits.
Labels never name a team, an image or a token: format, stream, queue and outcome only.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Seconds from received to done: an alert in well under a second, a large scan in minutes.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
DATABASE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

REPORTS_RECEIVED = Counter("vigil_reports_received", "Reports stored and queued for processing", ["format", "stream"])
REPORTS_DONE = Counter("vigil_reports_done", "Reports applied", ["format", "stream"])
REPORTS_FAILED = Counter("vigil_reports_failed", "Reports that ended as failed (unparsable, or given up on)", ["format", "stream"])
INGEST_LAG = Histogram("vigil_ingest_lag_seconds", "From a report's receipt to its being applied", ["stream"], buckets=LAG_BUCKETS)
#: Alerts per second is rate(vigil_alerts_total[1m]).
ALERTS = Counter("vigil_alerts", "Event reports received (Falco alerts, admission reviews)", ["format"])
REPORT_DATABASE_SECONDS = Histogram(
    "vigil_report_database_seconds",
    "Time spent in the database by one processing task (a batch of event reports is one task)",
    ["stream"],
    buckets=DATABASE_BUCKETS,
)
#: The CI gate's decisions by outcome (pass, warn, fail; error when the gate answered an error instead).
GATE_DECISIONS = Counter("vigil_gate_decisions", "CI gate decisions", ["outcome"])
GATE_LATENCY = Histogram("vigil_gate_decision_seconds", "Time to make a CI gate decision", ["outcome"], buckets=DECISION_BUCKETS)
#: The admission webhook's by outcome: allowed, warned (allowed with warnings), denied, skipped (nothing to decide), error.
ADMISSION_DECISIONS = Counter("vigil_admission_decisions", "Admission webhook decisions", ["outcome"])
ADMISSION_LATENCY = Histogram(
    "vigil_admission_decision_seconds", "Time to answer an admission review", ["outcome"], buckets=DECISION_BUCKETS
)

#: Rows the retention task deleted (kind: payloads, occurrences, sightings, reports): rate() shows it keeping up.
RETENTION_PRUNED = Counter("vigil_retention_pruned", "Rows deleted by retention", ["kind"])


def label(value: str | None) -> str:
    return value or "unknown"


class _Outcome:
    value = "error"


@contextlib.contextmanager
def decision(counter: Counter, latency: Histogram) -> Iterator[_Outcome]:
    """Count one decision made inside the block and how long it took, by the outcome the block sets on what it gets
    (``outcome.value = "pass"``); a block that raises, or sets nothing, counts as ``error``."""
    outcome = _Outcome()
    started = time.perf_counter()
    try:
        yield outcome
    except BaseException:
        outcome.value = "error"
        raise
    finally:
        counter.labels(outcome.value).inc()
        latency.labels(outcome.value).observe(time.perf_counter() - started)


def admission_outcome(review: dict[str, Any], *, decided: bool) -> str:
    """The outcome label of an admission answer."""
    response = review.get("response") or {}
    if not decided:
        return "skipped"
    if not response.get("allowed"):
        return "denied"
    return "warned" if response.get("warnings") else "allowed"


class _DatabaseTime:
    seconds = 0.0


@contextlib.contextmanager
def database_time(connection: Any) -> Iterator[_DatabaseTime]:
    """Add up the time ``connection`` spends executing statements inside the block."""
    spent = _DatabaseTime()

    def timed(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent.seconds += time.perf_counter() - started

    with connection.execute_wrapper(timed):
        yield spent


class QueueDepthCollector(Collector):
    """Messages waiting in each Celery queue, read from the broker when Prometheus scrapes (``depths``: by queue name;
    a queue the broker could not be asked about is left out)."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("vigil_queue_depth", "Messages waiting in a Celery queue (read at scrape time)", labels=["queue"])
        for queue, depth in sorted(self._depths().items()):
            family.add_metric([queue], depth)
        yield family


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every metric: this pod's processes (multiprocess mode) or this process, plus ``extra``."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Default(Collector):
    """This process's own metrics (the default registry), inside a per-scrape registry."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def report_received(*, format_name: str, stream: str, event: bool, failed: bool) -> None:
    """A report was stored (``failed``: refused at receipt as unparsable, so it will never be done)."""
    REPORTS_RECEIVED.labels(label(format_name), label(stream)).inc()
    if event:
        ALERTS.labels(label(format_name)).inc()
    if failed:
        REPORTS_FAILED.labels(label(format_name), label(stream)).inc()


def report_done(*, format_name: str, stream: str, lag_seconds: float) -> None:
    REPORTS_DONE.labels(label(format_name), label(stream)).inc()
    INGEST_LAG.labels(label(stream)).observe(max(lag_seconds, 0.0))


def report_failed(*, format_name: str, stream: str) -> None:
    REPORTS_FAILED.labels(label(format_name), label(stream)).inc()
