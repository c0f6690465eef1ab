"""Admission webhook decisions and the CI gate through gunicorn, against the trivial view in the same run.

Starts the real stack (bench/stack.py: its own database, gunicorn, one Celery worker), imports a realistic Trivy
report for two images (one with critical findings that have a fix: the default policy warns; one whose findings
are all low: it passes), loads the shipped training catalogue, creates an ``admission`` token bound to a cluster
and a ``read`` token, then, from ``--clients`` concurrent clients, in this order:

- GET /healthz (the trivial view: no token, no query);
- GET /api/v1/policies/bench/ with the read token: an ordinary authenticated read, for scale (the token checked, one
  small row read through the ORM and DRF's serializer);
- POST /api/v1/admission/validate for the passing image (a Deployment: the decision, a GateDecision row, the
  sighting skipped within its minute), then for the warned image (the same, its warnings naming training modules,
  plus the admission event: the first of a minute stored and published for the worker, each repeat one row that
  the beat task counts into a report);
- GET /api/v1/gate/ for the warned image with the read token (the decision, its modules and a GateDecision row);
- GET /healthz again.

It prints requests per second, p50 and p99 of each, the CPU each part of the stack spent per request (the
clients' figure includes their start-up), and each p99 over the trivial view's, the slower and the faster of its
two runs (aim for decisions: at most 2x).

    .venv/bin/python bench/admission_bench.py [--requests 1600] [--clients 16] [--findings 300]
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import stack as stack_mod  # noqa: E402
from bench.reportgen import trivy_bytes  # noqa: E402

REQUEST = ROOT / "tests" / "fixtures" / "admission-review" / "requests" / "deployment_update.json"
IMAGES = {"warned": "registry.example.com/bench/api", "passing": "registry.example.com/bench/clean"}
#: (label, kind) in the order they run: the trivial view first and last, the decisions between.
SCENARIOS = (
    ("healthz", "healthz"),
    ("policy_read", "policy_read"),
    ("passing", "passing"),
    ("warned", "warned"),
    ("gate", "gate"),
    ("healthz_again", "healthz"),
)
#: An ordinary authenticated read, for scale: the token checked, one small row read through the ORM and rendered.
FLOOR_PATH = "/api/v1/policies/bench/"


def review_for(image: str, number: int) -> bytes:
    """The documentation's Deployment update, for ``image``, with its own uid (the API server sends one per request)."""
    body = json.loads(REQUEST.read_text())
    body = copy.deepcopy(body)
    body["request"]["uid"] = f"705ab4f5-6393-11e8-b7cc-{number:012d}"
    body["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] = f"{image}:1.0.0"
    return json.dumps(body).encode()


def _client_process(port: int, token: str, kind: str, threads: int, per_thread: int, offset: int, start_at: float, results: Any) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        bodies = [review_for(IMAGES[kind], offset + index * per_thread + i) for i in range(per_thread)] if kind in IMAGES else []
        mine = []
        while time.time() < start_at:
            time.sleep(0.001)
        for i in range(per_thread):
            began = time.time()
            try:
                if kind in IMAGES:
                    conn.request("POST", "/api/v1/admission/validate", body=bodies[i], headers=headers)
                elif kind == "policy_read":
                    conn.request("GET", FLOOR_PATH, headers=headers)
                elif kind == "gate":
                    conn.request("GET", f"/api/v1/gate/?image={IMAGES['warned']}:1.0.0", headers=headers)
                else:
                    conn.request("GET", "/healthz")
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                if kind in IMAGES and status == 200 and "response" not in json.loads(payload):
                    status = -1
                if kind == "gate" and status == 200 and json.loads(payload).get("decision") != "warn":
                    status = -1
                if kind == "policy_read" and status == 200 and "mode" not in json.loads(payload):
                    status = -1
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status = 0
            mine.append((began, time.time(), status))
        conn.close()
        with lock:
            out.extend(mine)

    pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(out)


def load(port: int, token: str, kind: str, total: int, clients: int, processes: int = 4) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    threads, per_thread = clients // processes, total // clients
    start_at = time.time() + 3.0
    procs = [
        context.Process(target=_client_process, args=(port, token, kind, threads, per_thread, p * threads * per_thread, start_at, results))
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    samples: list[tuple[float, float, int]] = []
    for _ in procs:
        samples.extend(results.get())
    for proc in procs:
        proc.join()
    latencies = sorted(end - begin for begin, end, _ in samples)
    seconds = max(s[1] for s in samples) - min(s[0] for s in samples)
    ok = [s for s in samples if s[2] == 200]
    return {
        "requests": len(samples),
        "ok": len(ok),
        "statuses": sorted({s[2] for s in samples}),
        "per_second": len(ok) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seed(stack: stack_mod.Stack, findings: int) -> None:
    """Scan results for both images: the warned one as generated (criticals with fixes), the passing one all low;
    the shipped training catalogue, so that the warnings name their modules as they do in a real installation."""
    progress(stack_mod._manage(stack.env, "load_training").strip())
    for name, image in IMAGES.items():
        report = json.loads(trivy_bytes(findings, image=image))
        if name == "passing":
            for result in report["Results"]:
                for vulnerability in result.get("Vulnerabilities") or []:
                    vulnerability["Severity"] = "LOW"
        _, answer = stack.post_report(json.dumps(report).encode(), f"?image={image}:1.0.0")
        done = stack.wait_done(answer["id"])
        progress(f"{image}: {done['status']}, {done['counts']}")


def check(stack: stack_mod.Stack, token: str) -> dict[str, Any]:
    """One decision of each kind, to show what is being measured."""
    out = {}
    for name, image in IMAGES.items():
        conn = stack.http()
        conn.request("POST", "/api/v1/admission/validate", body=review_for(image, 0), headers={"Authorization": f"Bearer {token}"})
        answer = json.loads(conn.getresponse().read())["response"]
        conn.close()
        lines = answer.get("warnings", [])
        out[name] = {"allowed": answer["allowed"], "warnings": len(lines), "teaching": sum("; learn: " in line for line in lines)}
    return out


def run(*, requests: int, clients: int, findings: int, web_workers: int, web_threads: int, db_name: str) -> dict[str, Any]:
    with stack_mod.running_stack(db_name=db_name, web_workers=web_workers, web_threads=web_threads) as stack:
        token = stack_mod._manage(
            stack.env, "create_token", "--team", "bench", "--name", "webhook", "--scope", "admission", "--cluster", "bench"
        ).splitlines()[-1]
        reader = stack_mod._manage(stack.env, "create_token", "--team", "bench", "--name", "ci", "--scope", "read").splitlines()[-1]
        seed(stack, findings)
        figures: dict[str, Any] = {"clients": clients, "web_workers": web_workers, "web_threads": web_threads, "findings": findings}
        figures["load_average_start"] = os.getloadavg()[0]
        figures["answers"] = check(stack, token)
        for label, kind in SCENARIOS:
            progress(f"{label}: {requests} requests from {clients} clients")
            before, clients_before = stack.cpu_snapshot(), _children_cpu()
            figures[label] = load(stack.port, reader if kind in ("gate", "policy_read") else token, kind, requests, clients)
            used = {**stack_mod.cpu_used(before, stack.cpu_snapshot()), "clients": _children_cpu() - clients_before}
            figures[label]["cpu_ms_per_request"] = {group: seconds * 1000 / requests for group, seconds in used.items()}
        trivial = max(figures["healthz"]["p99_ms"], figures["healthz_again"]["p99_ms"])
        figures["p99_ratio"] = {name: figures[name]["p99_ms"] / trivial for name in ("policy_read", *IMAGES, "gate")}
        faster = min(figures["healthz"]["p99_ms"], figures["healthz_again"]["p99_ms"])
        figures["p99_ratio_to_faster"] = {name: figures[name]["p99_ms"] / faster for name in figures["p99_ratio"]}
        figures["load_average_end"] = os.getloadavg()[0]
        return figures


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the client processes, once joined)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def show(f: dict[str, Any]) -> None:
    print(f"{f['clients']} clients, gunicorn {f['web_workers']} workers x {f['web_threads']} threads; {f['findings']} findings per image")
    print(f"answers: {f['answers']}; load average {f['load_average_start']:.1f} -> {f['load_average_end']:.1f}")
    for name, _ in SCENARIOS:
        r = f[name]
        cpu = "  ".join(f"{group} {ms:.2f}" for group, ms in r["cpu_ms_per_request"].items())
        print(f"{name:14} {r['ok']:5}/{r['requests']} ok  {r['per_second']:7.0f}/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms")
        print(f"{'':14} CPU ms per request: {cpu}")
    for name, ratio in f["p99_ratio"].items():
        faster = f["p99_ratio_to_faster"][name]
        print(f"p99 {name} / p99 of the trivial view: {ratio:.2f}x the slower of its two runs, {faster:.2f}x the faster (aim <= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1600, help="requests per scenario (default 1600)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--findings", type=int, default=300, help="findings per image (default 300)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gunicorn worker (default 1)")
    parser.add_argument("--db", default=os.environ.get("VIGIL_BENCH_DB", "vigil_bench_admission"), help="database to create and drop")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(
        requests=args.requests,
        clients=args.clients,
        findings=args.findings,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        db_name=args.db,
    )
    show(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
