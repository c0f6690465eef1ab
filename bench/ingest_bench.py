"""Ingestion on the real stack, in one run: gunicorn, one Celery worker, PostgreSQL, Redis.

    .venv/bin/python bench/ingest_bench.py [--n 10000] [--mb 50] [--alerts 1600] [--only falco] [--json bench/out/ingest.json]

Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis on 127.0.0.1:6379.  The script
creates and drops its own database (``vigil_bench`` unless --db or VIGIL_BENCH_DB), uses a private queue name, and starts
and stops gunicorn and the worker itself (see bench/stack.py).  It measures:

a. the first import of N findings (POST -> ``done``) against the floor: a PostgreSQL COPY of the same
   normalised rows into an unindexed copy of the findings table, in the same run;
b. the same report again (CreatedAt changed so the bytes differ), again under a new tag, and with 10 %
   of the findings removed and 10 % new, as fractions of the first import;
c. the worker's peak RSS (VmHWM) while it ingests a 50 MB report (and the web worker's, which loads the
   report to refuse a broken one with a 422 before answering; it parses in full only up to VIGIL_VALIDATE_SYNC_BYTES);
d. Falco alerts posted one per request by 16 concurrent clients, against GET /healthz on the same gunicorn,
   and that every accepted alert reaches ``done`` and is counted in the aggregated findings.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import stack as stack_mod  # noqa: E402
from bench.copy_floor import FLOOR_ROUNDS, copy_floor  # noqa: E402
from bench.parse_bench import report_file  # noqa: E402
from bench.reportgen import trivy_report  # noqa: E402

FALCO_FIXTURE = ROOT / "tests" / "fixtures" / "falco" / "falcosidekick_webhook_payloads.jsonl"
#: Workloads the generated alerts come from: the findings aggregate per (rule, namespace, workload).
FALCO_WORKLOADS = [("payments", "api-7d9f8b6c5"), ("payments", "worker-5c8d7f9b4"), ("shop", "web-6b7c8d9f5"), ("shop", "cart-84f9c7d6b")]


# --------------------------------------------------------------------------- reports


def trivy_window(first: int, last: int, *, tag: str = "1.0.0", created_at: str = "2026-11-27T10:00:00Z") -> bytes:
    """Findings numbered first..last-1, each with exactly the content it has in every other window.

    ``trivy_report(n, start=...)`` draws CVSS scores from one random sequence, so shifting ``start``
    would change the score of every finding; cutting a window out of one longer report does not.
    """
    report = trivy_report(last, tag=tag)
    report["CreatedAt"] = created_at
    for result in report["Results"]:
        result["Vulnerabilities"] = [v for v in result["Vulnerabilities"] if int(v["VulnerabilityID"].rsplit("-", 1)[1]) - 10000 >= first]
    return json.dumps(report).encode()


# --------------------------------------------------------------------------- imports


def progress(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed_import(stack: stack_mod.Stack, body: bytes, query: str = "", *, label: str = "") -> dict[str, Any]:
    progress(f"posting {label} ({len(body) / 1e6:.1f} MB)")
    cpu_before = stack.cpu_snapshot()
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    post_seconds, answer = stack.post_report(body, query)
    done = stack.wait_done(answer["id"])
    polled = time.perf_counter() - started
    if done["status"] != "done":
        raise RuntimeError(f"report {answer['id']} failed: {done['error']}")
    # POST -> done is measured to the server's finished_at (same machine, same clock), not to the poll that saw
    # it: polling every 50 ms would add up to 50 ms to every figure, a large part of a short one.
    seconds = (dt.datetime.fromisoformat(done["finished_at"]) - started_at).total_seconds()
    cpu = stack_mod.cpu_used(cpu_before, stack.cpu_snapshot())
    progress(
        f"{label}: done in {seconds:.2f} s (seen by polling after {polled:.2f} s) "
        f"(CPU: worker {cpu['worker']:.2f} s, web {cpu['web']:.2f} s, "
        f"PostgreSQL {cpu['database']:.2f} s), "
        f"counts {done['counts']}"
    )
    worker = (dt.datetime.fromisoformat(done["finished_at"]) - dt.datetime.fromisoformat(done["started_at"])).total_seconds()
    return {
        "id": answer["id"],
        "seconds": seconds,
        "polled_seconds": polled,
        "post_seconds": post_seconds,
        "worker_seconds": worker,
        "worker_cpu_seconds": cpu["worker"],
        "web_cpu_seconds": cpu["web"],
        "database_cpu_seconds": cpu["database"],
        "counts": done["counts"],
        "findings": done["findings_total"],
        "bytes": len(body),
    }


def imports(stack: stack_mod.Stack, n: int) -> dict[str, Any]:
    tenth = n // 10
    first_body = trivy_window(0, n)
    first = timed_import(stack, first_body, label=f"first import of {n}")
    floor = copy_floor(stack, first_body)
    rounds = ", ".join(f"{r:.3f}" for r in floor["copy_rounds"])
    progress(f"COPY floor: {floor['copy_seconds']:.3f} s for {floor['rows']} rows (median of {rounds})")
    again = timed_import(stack, trivy_window(0, n, created_at="2026-11-27T11:00:00Z"), label="the same report again")
    new_tag = timed_import(stack, trivy_window(0, n, tag="1.0.1", created_at="2026-11-27T12:00:00Z"), label="again under a new tag")
    churn_body = trivy_window(tenth, n + tenth, tag="1.0.1", created_at="2026-11-27T13:00:00Z")
    churn = timed_import(stack, churn_body, label="10% removed, 10% new")
    expected = {
        "first": {"new": n, "reopened": 0, "unchanged": 0, "fixed": 0},
        "again": {"new": 0, "reopened": 0, "unchanged": n, "fixed": 0},
        "new_tag": {"new": 0, "reopened": 0, "unchanged": n, "fixed": 0},
        "churn": {"new": tenth, "reopened": 0, "unchanged": n - tenth, "fixed": tenth},
    }
    runs = {"first": first, "again": again, "new_tag": new_tag, "churn": churn}
    return {
        "n": n,
        **runs,
        "floor": floor,
        "counts_exact": all(runs[name]["counts"] == expected[name] for name in runs),
        "ratio_to_floor": first["seconds"] / floor["copy_seconds"],
        "again_fraction": again["seconds"] / first["seconds"],
        "new_tag_fraction": new_tag["seconds"] / first["seconds"],
        "churn_fraction": churn["seconds"] / first["seconds"],
    }


def big_report(stack: stack_mod.Stack, megabytes: float) -> dict[str, Any]:
    """Ingest a ~50 MB report; the worker's and the web workers' peak RSS while doing it."""
    body = report_file(megabytes).read_bytes()
    web = stack.gunicorn_workers()
    reset = all(stack_mod.reset_hwm(pid) for pid in [stack.worker.pid, *web])
    worker_before = stack_mod.vm_hwm_mib(stack.worker.pid)
    result = timed_import(stack, body, label=f"the {megabytes:g} MB report")
    result.update(
        {
            "hwm_reset": reset,
            "worker_rss_before_mib": worker_before,
            "worker_peak_rss_mib": stack_mod.vm_hwm_mib(stack.worker.pid),
            "web_peak_rss_mib": max(stack_mod.vm_hwm_mib(pid) for pid in web),
        }
    )
    return result


# --------------------------------------------------------------------------- Falco alerts and the trivial view


def _alert_template() -> dict[str, Any]:
    return dict(json.loads(FALCO_FIXTURE.read_text().splitlines()[0]))


def _alert(template: dict[str, Any], number: int) -> bytes:
    alert = copy.deepcopy(template)
    namespace, workload = FALCO_WORKLOADS[number % len(FALCO_WORKLOADS)]
    pod = f"{workload}-{'bcdfghjklm'[number % 10]}{'npqrstvwxz'[number // 10 % 10]}x2x"  # one pod name of 100 per workload
    moment = dt.datetime.now(dt.UTC)
    alert["uuid"] = str(uuid.uuid4())
    alert["time"] = moment.isoformat().replace("+00:00", "Z")
    fields = alert["output_fields"]
    fields.update({"k8s.ns.name": namespace, "k8s.pod.name": pod, "evt.time": int(moment.timestamp() * 1e9) + number})
    return json.dumps(alert).encode()


def _client_process(port: int, token: str, kind: str, threads: int, per_thread: int, offset: int, start_at: float, results: Any) -> None:
    """One load process: ``threads`` clients, each sending ``per_thread`` requests one after another."""
    template = _alert_template()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out: list[tuple[float, float, int, str]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        bodies = [_alert(template, offset + index * per_thread + i) for i in range(per_thread)] if kind == "alerts" else []
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(per_thread):
            began = time.time()
            try:
                if kind == "alerts":
                    conn.request("POST", "/api/v1/reports/", body=bodies[i], headers=headers)
                else:
                    conn.request("GET", "/healthz")
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                report_id = json.loads(payload)["id"] if kind == "alerts" and status == 202 else ""
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                status, report_id = 0, ""
            mine.append((began, time.time(), status, report_id))
        conn.close()
        with lock:
            out.extend(mine)

    pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(out)


def load(stack: stack_mod.Stack, kind: str, total: int, clients: int = 16, processes: int = 4) -> dict[str, Any]:
    """``clients`` concurrent clients (threads spread over ``processes`` processes) sending ``total`` requests."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    threads = clients // processes
    per_thread = total // clients
    start_at = time.time() + 3.0  # every client starts together, after the processes have started
    procs = [
        context.Process(
            target=_client_process,
            args=(stack.port, stack.token, kind, threads, per_thread, p * threads * per_thread, start_at, results),
        )
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    samples: list[tuple[float, float, int, str]] = []
    for _ in procs:
        samples.extend(results.get())
    for proc in procs:
        proc.join()
    began = min(s[0] for s in samples)
    ended = max(s[1] for s in samples)
    ok_status = 202 if kind == "alerts" else 200
    ok = [s for s in samples if s[2] == ok_status]
    latencies = sorted(s[1] - s[0] for s in samples)
    return {
        "requests": len(samples),
        "accepted": len(ok),
        "errors": len(samples) - len(ok),
        "statuses": sorted({s[2] for s in samples}),
        "seconds": ended - began,
        "per_second": len(ok) / (ended - began),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "ids": [s[3] for s in ok],
        "ended": ended,
    }


def falco(stack: stack_mod.Stack, total: int, clients: int) -> dict[str, Any]:
    progress(f"GET /healthz x {total} from {clients} clients")
    cpu_before = stack.cpu_snapshot()
    trivial = load(stack, "healthz", total, clients)
    trivial["cpu"] = stack_mod.cpu_used(cpu_before, stack.cpu_snapshot())
    progress(f"POST {total} Falco alerts from {clients} clients")
    cpu_before = stack.cpu_snapshot()
    alerts = load(stack, "alerts", total, clients)
    alerts["cpu"] = stack_mod.cpu_used(cpu_before, stack.cpu_snapshot())
    progress(f"{alerts['accepted']} alerts accepted at {alerts['per_second']:.0f}/s; waiting for the worker to process them")
    ids = alerts.pop("ids")
    trivial.pop("ids")
    conn = stack.connect()
    deadline = time.monotonic() + 1800
    while True:
        with conn.cursor() as cur:
            cur.execute("SELECT status, count(*) FROM dashboard_report WHERE id = ANY(%s::uuid[]) GROUP BY status", (ids,))
            statuses = dict(cur.fetchall())
        conn.rollback()
        if statuses.get("queued", 0) + statuses.get("processing", 0) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    drained = time.time()
    drain_cpu = stack_mod.cpu_used(cpu_before, stack.cpu_snapshot())
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(occurrences), 0) FROM dashboard_finding WHERE source = 'falco'")
        findings, occurrences = cur.fetchone()
    conn.close()
    return {
        "clients": clients,
        "trivial": trivial,
        "alerts": alerts,
        "ratio_to_trivial": alerts["per_second"] / trivial["per_second"],
        "report_statuses": statuses,
        "distinct_ids": len(set(ids)),
        "findings": findings,
        "occurrences": int(occurrences),
        "lost": alerts["accepted"] - int(occurrences),
        "drain_seconds_after_last_post": drained - alerts["ended"],
        "worker_alerts_per_second": alerts["accepted"] / (drained - alerts["ended"] + alerts["seconds"]),
        # CPU milliseconds per request while posting (web, worker, PostgreSQL), and the worker's per alert end to end.
        "cpu_ms_per_request": {
            "healthz": {group: 1000 * seconds / trivial["requests"] for group, seconds in trivial["cpu"].items()},
            "alerts": {group: 1000 * seconds / alerts["requests"] for group, seconds in alerts["cpu"].items()},
        },
        "worker_cpu_ms_per_alert": 1000 * drain_cpu["worker"] / max(alerts["accepted"], 1),
    }


# --------------------------------------------------------------------------- main


PARTS = ("imports", "big", "falco")


def run(
    *,
    n: int,
    megabytes: float,
    alerts: int,
    clients: int,
    web_workers: int,
    web_threads: int,
    db_name: str,
    keep_db: bool,
    parts: tuple[str, ...] = PARTS,
) -> dict[str, Any]:
    if "big" in parts:
        report_file(megabytes)  # generated before the stack starts (cached under bench/out/)
    with stack_mod.running_stack(db_name=db_name, web_workers=web_workers, web_threads=web_threads, keep_db=keep_db) as stack:
        figures: dict[str, Any] = {
            "web_workers": web_workers,
            "web_threads": web_threads,
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
        }
        if "imports" in parts:
            figures["imports"] = imports(stack, n)
        if "big" in parts:
            figures["big"] = big_report(stack, megabytes)
        if alerts and "falco" in parts:
            figures["falco"] = falco(stack, alerts, clients)
        figures["load_after"] = os.getloadavg()
    return figures


MARK = {True: "ok", False: "MISSED"}


def show(f: dict[str, Any]) -> None:
    """Print the figures; a section the run skipped (e.g. --alerts 0) prints as skipped."""
    print(f"ingestion on the real stack (gunicorn x{f['web_workers']}, 1 Celery worker --pool solo, PostgreSQL, Redis; {f['cpus']} CPUs)")
    print(f"  load average before/after: {f['load_before'][0]:.2f} / {f['load_after'][0]:.2f}")
    for name, letters, part in (("imports", "a./b.", _show_imports), ("big", "c.", _show_big), ("falco", "d.", _show_falco)):
        if name in f:
            part(f[name])
        else:
            print(f"{letters} skipped")


def _show_imports(i: dict[str, Any]) -> None:
    first, floor = i["first"], i["floor"]
    print(f"a. first import of {i['n']} findings: {first['seconds']:.2f} s POST->done ({i['n'] / first['seconds']:,.0f} findings/s)")
    print(
        f"     POST (stores; validates: full parse up to VIGIL_VALIDATE_SYNC_BYTES) {first['post_seconds']:.2f} s; "
        f"worker (parse + apply) {first['worker_seconds']:.2f} s"
    )
    print(
        f"   floor: COPY of the same {floor['rows']} rows into an unindexed table {floor['copy_seconds']:.3f} s (median of {FLOOR_ROUNDS})"
    )
    print(
        f"     (not in the floor: parsing {floor['parse_seconds']:.2f} s, CSV {floor['csv_seconds']:.2f} s, {floor['csv_bytes'] / 1e6:.1f} MB)"  # noqa: E501
    )
    print(f"   ratio to the floor: {i['ratio_to_floor']:.1f}x  (aim <= 10x: {MARK[i['ratio_to_floor'] <= 10]})")
    print(
        f"b. same report again:  {i['again']['seconds']:.2f} s = {i['again_fraction']:.1%} of the first "
        f"(aim <= 5%: {MARK[i['again_fraction'] <= 0.05]})"
    )
    print(f"   again, new tag:     {i['new_tag']['seconds']:.2f} s = {i['new_tag_fraction']:.1%} of the first")
    print(
        f"   10% gone, 10% new:  {i['churn']['seconds']:.2f} s = {i['churn_fraction']:.1%} of the first "
        f"(aim <= 20%: {MARK[i['churn_fraction'] <= 0.2]})"
    )
    print(f"   counts exact on all four imports: {i['counts_exact']}  (churn: {i['churn']['counts']})")
    print("   CPU seconds (less sensitive to a busy machine than wall time): worker / web / PostgreSQL")
    for name in ("first", "again", "new_tag", "churn"):
        run = i[name]
        print(f"     {name:8} {run['worker_cpu_seconds']:6.2f} / {run['web_cpu_seconds']:5.2f} / {run['database_cpu_seconds']:5.2f}")


def _show_big(big: dict[str, Any]) -> None:
    print(
        f"c. {big['bytes'] / 1e6:.1f} MB report ({big['findings']} findings): {big['seconds']:.1f} s POST->done, "
        f"POST {big['post_seconds']:.1f} s, worker {big['worker_seconds']:.1f} s"
    )
    print(
        f"   CPU seconds: worker {big['worker_cpu_seconds']:.1f}, web {big['web_cpu_seconds']:.1f}, "
        f"PostgreSQL {big['database_cpu_seconds']:.1f}"
    )
    print(
        f"   worker peak RSS {big['worker_peak_rss_mib']:.0f} MiB (aim <= 500 MB: {MARK[big['worker_peak_rss_mib'] * 1.048576 <= 500]}); "
        f"web worker peak RSS {big['web_peak_rss_mib']:.0f} MiB; peaks reset before: {big['hwm_reset']}"
    )


def _show_falco(fa: dict[str, Any]) -> None:
    t, a = fa["trivial"], fa["alerts"]
    print(f"d. {fa['clients']} concurrent clients, one request each at a time:")
    print(
        f"   GET /healthz:        {t['per_second']:,.0f} req/s, p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms ({t['errors']} errors)"
    )
    print(
        f"   POST one Falco alert: {a['per_second']:,.0f} alerts/s accepted, p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms "
        f"({a['accepted']} accepted, {a['errors']} errors, statuses {a['statuses']})"
    )
    print(f"   ratio to the trivial view: {fa['ratio_to_trivial']:.2f}  (aim >= 0.5: {MARK[fa['ratio_to_trivial'] >= 0.5]})")
    print(
        f"   reports: {fa['report_statuses']}; aggregated into {fa['findings']} findings with {fa['occurrences']} occurrences; "
        f"lost {fa['lost']} (aim 0: {MARK[fa['lost'] == 0]})"
    )
    print(
        f"   the worker drained the queue {fa['drain_seconds_after_last_post']:.1f} s after the last POST "
        f"({fa['worker_alerts_per_second']:,.0f} alerts/s end to end)"
    )
    if "cpu_ms_per_request" in fa:  # older result files have no CPU figures
        h, p = fa["cpu_ms_per_request"]["healthz"], fa["cpu_ms_per_request"]["alerts"]
        print(
            f"   CPU ms per request, web / worker / PostgreSQL: GET /healthz {h['web']:.2f} / {h['worker']:.2f} / {h['database']:.2f}; "
            f"POST alert {p['web']:.2f} / {p['worker']:.2f} / {p['database']:.2f}"
        )
        print(f"   worker CPU ms per alert, until the queue was drained: {fa['worker_cpu_ms_per_alert']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="findings in the import report (default 10000)")
    parser.add_argument("--mb", type=float, default=50, help="size of the large report in MB (default 50)")
    parser.add_argument("--alerts", type=int, default=1600, help="Falco alerts to post (default 1600)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (default 1)")
    parser.add_argument("--db", default=os.environ.get("VIGIL_BENCH_DB", "vigil_bench"), help="database to create and drop")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards (to inspect it)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (a. and b. are imports); repeatable")
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the figures to this file; first_import_ratio, churn_ratio, same_again_ratio, falco_ratio and alerts_lost on top",
    )
    args = parser.parse_args()
    figures = run(
        n=args.n,
        megabytes=args.mb,
        alerts=args.alerts,
        clients=args.clients,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        db_name=args.db,
        keep_db=args.keep_db,
        parts=tuple(args.only or PARTS),
    )
    show(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**headline(figures), **figures}, indent=2, default=str))


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The five figures the aims are checked against, at the top of the JSON (None for a part the run skipped)."""
    imports, falco = figures.get("imports") or {}, figures.get("falco") or {}
    return {
        "first_import_ratio": imports.get("ratio_to_floor"),
        "churn_ratio": imports.get("churn_fraction"),
        "same_again_ratio": imports.get("again_fraction"),
        "falco_ratio": falco.get("ratio_to_trivial"),
        "alerts_lost": falco.get("lost"),
    }


if __name__ == "__main__":
    main()
