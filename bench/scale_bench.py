"""More Celery worker processes, more throughput: scan reports and Falco alerts applied by 1, 2 (and 4) processes.

    .venv/bin/python bench/scale_bench.py [--scans 200] [--findings 150] [--alerts 5000] [--senders 4] [--workers 1,2,4] [--no-docs]

Real engines only: the machine's PostgreSQL (127.0.0.1:5432) and Redis (VIGIL_BENCH_BROKER_URL, default
redis://127.0.0.1:6379/0), a real ``celery worker`` (prefork pool, ``--concurrency N``) consuming the reports and
events queues under a private prefix.  The reports are stored once in a seed database (report_submit, not enqueued);
each run starts from a copy of it (CREATE DATABASE ... TEMPLATE), starts the worker, publishes one task per scan on
the reports queue, then one task per sending cluster on the events queue (what the receive path publishes for a burst
of alerts: that task drains its sender's queued alerts in batches) and times, for each phase, from the first publish to
the moment the database says every report of the phase is done.  Every run must end with the same exact totals
(reports done, findings, occurrences): every report done and none failed, one occurrence per scanned finding and
per alert, and the same number of findings in every run; the script stops otherwise.  It prints a table and writes
it under "Scale-out" in docs/performance.md (unless --no-docs).

At the issue's size (the defaults: 200 scans, 5,000 alerts, 1, 2 and 4 processes) expect about 6 to 10 minutes on a
shared 2-core machine at load 2-3: about two minutes (seeding 25 s, then each run 25-40 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from bench.reportgen import trivy_bytes  # noqa: E402
from bench.stack import _admin, _migrate, _wait_log, stop  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
OUT = ROOT / "bench" / "out"
HEADING = "## Scale-out: more workers, more throughput"
SEED_DB = "vigil_scalebench_seed"
RUN_DB = "vigil_scalebench_run"
BROKER = os.environ.get("VIGIL_BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
PREFIX = f"vigil-scalebench-{uuid.uuid4().hex[:8]}-"
ALERT = json.loads((ROOT / "tests/fixtures/falco/falcosidekick_webhook_payloads.jsonl").read_text().splitlines()[0])


def db_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def env_for(name: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": db_url(name), "CELERY_BROKER_URL": BROKER, "VIGIL_CELERY_QUEUE_PREFIX": PREFIX}
    env |= {"VIGIL_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "vigil.settings", "VIGIL_DB_CONN_MAX_AGE": "60"}
    env.pop("VIGIL_CELERY_QUEUE", None)
    env.pop("VIGIL_DEBUG", None)
    return env


def seed(scans: int, findings: int, alerts: int, senders: int) -> dict[str, list[str]]:
    """Store the reports in the seed database (queued, not enqueued); returns their ids by phase, and under "leaders"
    the first alert of each sender (a cluster: its own team here), the one whose task the receive path publishes."""
    _admin(f'DROP DATABASE IF EXISTS "{SEED_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{SEED_DB}"')
    os.environ.update(env_for(SEED_DB))
    _migrate(env_for(SEED_DB))
    import django

    django.setup()
    from django.db import connections

    from dashboard.ingest.receive import report_submit
    from dashboard.services.teams import team_create

    team_create(slug="bench", name="Bench")
    for sender in range(senders):
        team_create(slug=f"cluster-{sender}", name=f"Cluster {sender}")
    ids: dict[str, list[str]] = {"scans": [], "alerts": [], "leaders": []}
    started = time.monotonic()
    for n in range(scans):
        image = f"registry.example.com/bench/app{n}"
        data = trivy_bytes(findings, image=image, seed=n, start=n * 7)
        report, _ = report_submit(data=data, team_slug="bench", image=f"{image}:1.0.0", enqueue_now=False)
        ids["scans"].append(str(report.pk))
    print(f"seeded {scans} scans in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    for n in range(alerts):
        alert = {**ALERT, "uuid": str(uuid.UUID(int=n)), "output": f"{ALERT['output']} seq={n}", "hostname": f"node-{n % 20}"}
        alert["output_fields"] = {**ALERT["output_fields"], "k8s.pod.name": f"api-{n % 50}"}
        team = f"cluster-{n % senders}"
        report, _ = report_submit(data=json.dumps(alert).encode(), team_slug=team, format_name="falco", enqueue_now=False)
        ids["alerts"].append(str(report.pk))
        if n < senders:
            ids["leaders"].append(str(report.pk))
    print(f"seeded {alerts} alerts in {time.monotonic() - started:.0f} s", flush=True)
    connections.close_all()  # a template database must have no connections
    return ids


def totals(conn: Any) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM dashboard_report GROUP BY status")
        by_status = dict(cur.fetchall())
        cur.execute("SELECT count(*), coalesce(sum(occurrences), 0) FROM dashboard_finding")
        finding_count, occurrences = cur.fetchone()
    done, failed = by_status.get("done", 0), by_status.get("failed", 0)
    return {"done": done, "failed": failed, "findings": finding_count, "occurrences": int(occurrences)}


def wrong_totals(got: dict[str, int], *, first: dict[str, int], args: argparse.Namespace) -> str:
    """What is wrong with a run's totals ("" if nothing): every report done, none failed, one occurrence per scanned
    finding and per alert, and the same findings as the first run (how alerts aggregate is the product's rule)."""
    expected = {"done": args.scans + args.alerts, "failed": 0, "occurrences": args.scans * args.findings + args.alerts}
    wrong = [f"{key} {got[key]} instead of {value}" for key, value in expected.items() if got[key] != value]
    if got["findings"] != first["findings"]:
        wrong.append(f"findings {got['findings']} instead of {first['findings']} (first run)")
    return "; ".join(wrong)


def wait_done(conn: Any, ids: list[str], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM dashboard_report WHERE id = ANY(%s::uuid[]) AND status IN ('done', 'failed')", [ids])
            if cur.fetchone()[0] == len(ids):
                return
        time.sleep(0.1)
    raise TimeoutError(f"{len(ids)} reports not all finished within {timeout} s")


def run(processes: int, ids: dict[str, list[str]]) -> dict[str, Any]:
    """One run on a fresh copy of the seed database: the scans, then the alerts, with ``processes`` worker processes."""
    from celery import current_app

    _admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{SEED_DB}"')
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"scale-worker-{processes}.log"
    log.unlink(missing_ok=True)
    queues = f"{PREFIX}reports,{PREFIX}events"
    argv = [sys.executable, "-m", "celery", "-A", "vigil", "worker", "-Q", queues, "--pool", "prefork", "--concurrency", str(processes)]
    argv += ["-n", f"scale{processes}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info", "-f", str(log)]
    worker = subprocess.Popen(argv, cwd=ROOT, env=env_for(RUN_DB), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    conn = psycopg2.connect(db_url(RUN_DB))
    conn.autocommit = True
    figures: dict[str, Any] = {"processes": processes}
    try:
        _wait_log(log, "ready.", worker, timeout=120)
        # Scans: one task each.  Alerts: one task per sender, as the receive path publishes for a burst that is all
        # stored before its first task starts (a pending mark per sender); that task drains its sender's queue.
        phases = (("scans", "scans", "vigil.reports.process", "reports"), ("alerts", "leaders", "vigil.events.process", "events"))
        for phase, published, task, queue in phases:
            started = time.monotonic()
            for report_id in ids[published]:
                current_app.send_task(task, args=[report_id], queue=PREFIX + queue)
            wait_done(conn, ids[phase])
            seconds = time.monotonic() - started
            figures[phase] = {"seconds": round(seconds, 2), "per_second": round(len(ids[phase]) / seconds, 1)}
        figures["totals"] = totals(conn)
    finally:
        conn.close()
        stop(worker, timeout=60)
    return figures


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    base = results[0]
    lines = [
        f"{args.scans} Trivy scans of {args.findings} findings each (distinct images), then {args.alerts} Falco alerts"
        f" from {args.senders} clusters,",
        "applied by one `celery worker` with N prefork processes on the reports and events queues (Redis, PostgreSQL 16).",
        "",
        "| worker processes | scans/s | speed-up | alerts/s | speed-up | reports done | findings | occurrences |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r["totals"]
        scan_up = r["scans"]["per_second"] / base["scans"]["per_second"]
        alert_up = r["alerts"]["per_second"] / base["alerts"]["per_second"]
        lines.append(
            f"| {r['processes']} | {r['scans']['per_second']} | {scan_up:.2f}x | {r['alerts']['per_second']} | {alert_up:.2f}x"
            f" | {t['done']} | {t['findings']} | {t['occurrences']} |"
        )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    docs = DOCS.read_text()
    marker = "<!-- scale_bench figures -->"
    block = f"{marker}\n{text}\n{marker}"
    if marker in docs:
        head, _, rest = docs.partition(marker)
        _, _, tail = rest.partition(marker)
        DOCS.write_text(head + block + tail)
    else:
        DOCS.write_text(docs.rstrip() + f"\n\n{HEADING}\n\n{block}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--findings", type=int, default=150)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--senders", type=int, default=4, help="clusters sending the alerts (each its own team)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    ids = seed(args.scans, args.findings, args.alerts, args.senders)
    print(f"seeded {len(ids['scans'])} scans and {len(ids['alerts'])} alerts in {time.monotonic() - started:.0f} s", flush=True)
    results = []
    try:
        for processes in (int(n) for n in args.workers.split(",")):
            run_started = time.monotonic()
            results.append(run(processes, ids))
            print(json.dumps(results[-1]), f"({time.monotonic() - run_started:.0f} s with setup)", flush=True)
            wrong = wrong_totals(results[-1]["totals"], first=results[0]["totals"], args=args)
            if wrong:
                print(f"{processes} processes: {wrong}: {results[-1]['totals']} (first run {results[0]['totals']})", file=sys.stderr)
                return 1
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        _admin(f'DROP DATABASE IF EXISTS "{SEED_DB}" WITH (FORCE)')
        _drop_queues()
    text = table(results, args)
    print(text)
    (OUT / "scale_bench.json").write_text(json.dumps(results, indent=2))
    if not args.no_docs:
        write_docs(text)
    return 0


def _drop_queues() -> None:
    import redis

    client = redis.Redis.from_url(BROKER, socket_timeout=5)
    keys = client.keys(f"{PREFIX}*") + client.keys(f"_kombu.binding.{PREFIX}*")
    if keys:
        client.delete(*keys)


if __name__ == "__main__":
    sys.exit(main())
