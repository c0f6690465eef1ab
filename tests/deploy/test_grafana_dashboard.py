"""The Grafana dashboard (deploy/grafana/) is built on metrics Vigil exposes: no panel queries a name that does not exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from dashboard import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "vigil-dashboard.json"
#: vigil_queue_depth is collected at scrape time (dashboard/metrics.py QueueDepthCollector), not registered up front.
COLLECTED_AT_SCRAPE = {"vigil_queue_depth"}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exposed_names() -> set[str]:
    """The sample names of every metric object dashboard/metrics.py defines."""
    families = [family for value in vars(metrics).values() if isinstance(value, MetricWrapperBase) for family in value.describe()]
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def test_every_panel_queries_only_metrics_vigil_exposes() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {name for panel in panels for target in panel["targets"] for name in re.findall(r"\bvigil_\w+", target["expr"])}

    assert queried - COLLECTED_AT_SCRAPE <= exposed_names()
    assert {"vigil_reports_received_total", "vigil_ingest_lag_seconds_bucket", "vigil_queue_depth", "vigil_alerts_total"} <= queried
    assert {"vigil_gate_decisions_total", "vigil_admission_decisions_total", "vigil_report_database_seconds_bucket"} <= queried
