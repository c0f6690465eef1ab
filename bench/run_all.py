"""Run every benchmark and print one summary table (``make bench``).

    .venv/bin/python bench/run_all.py [--n 10000] [--mb 50] [--alerts 1600]

Each benchmark runs as its own process and writes its figures to bench/out/*.json; this script prints
their own reports, then the table.  bench/queue_bench.py (the triage queue) runs too when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def _run(script: str, *args: str) -> int:
    print(f"\n$ python bench/{script} {' '.join(args)}".rstrip(), flush=True)
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, check=False).returncode


def _ok(condition: bool) -> str:
    return "ok" if condition else "MISSED"


def table(parse: dict[str, Any], ingest: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    i, big, fa = ingest["imports"], ingest["big"], ingest["falco"]
    n = i["n"]
    rows = [
        ("parse 50 MB Trivy (fresh process)", f"{parse['parse_seconds']:.1f} s, {parse['findings_per_second']:,.0f} findings/s", "", ""),
        ("  peak RSS of the parse process", f"{parse['peak_rss_mib']:.0f} MiB ({parse['findings']} findings)", "bounded", ""),
        (
            f"first import, {n} findings, POST->done",
            f"{i['first']['seconds']:.2f} s, {n / i['first']['seconds']:,.0f} findings/s",
            "",
            "",
        ),
        (
            "  ratio to COPY floor",
            f"{i['ratio_to_floor']:.1f}x (COPY {i['floor']['copy_seconds']:.3f} s)",
            "<= 10x",
            _ok(i["ratio_to_floor"] <= 10),
        ),
        ("same report again", f"{i['again']['seconds']:.2f} s = {i['again_fraction']:.1%}", "<= 5%", _ok(i["again_fraction"] <= 0.05)),
        ("  again under a new tag", f"{i['new_tag']['seconds']:.2f} s = {i['new_tag_fraction']:.1%}", "", ""),
        ("10% removed, 10% new", f"{i['churn']['seconds']:.2f} s = {i['churn_fraction']:.1%}", "<= 20%", _ok(i["churn_fraction"] <= 0.2)),
        ("  counts exact (new/unchanged/fixed)", str(i["counts_exact"]), "True", _ok(i["counts_exact"])),
        (
            f"worker peak RSS, {big['bytes'] / 1e6:.0f} MB report",
            f"{big['worker_peak_rss_mib']:.0f} MiB ({big['seconds']:.0f} s POST->done)",
            "<= 500 MB",
            _ok(big["worker_peak_rss_mib"] * 1.048576 <= 500),
        ),
        ("  web worker peak RSS, same POST", f"{big['web_peak_rss_mib']:.0f} MiB", "", ""),
        (
            f"Falco alerts, {fa['clients']} clients",
            f"{fa['alerts']['per_second']:,.0f}/s, p99 {fa['alerts']['p99_ms']:.0f} ms",
            "",
            "",
        ),
        (
            "  GET /healthz, same clients",
            f"{fa['trivial']['per_second']:,.0f}/s, p99 {fa['trivial']['p99_ms']:.0f} ms",
            "",
            "",
        ),
        ("  ratio alerts / trivial view", f"{fa['ratio_to_trivial']:.2f}", ">= 0.5", _ok(fa["ratio_to_trivial"] >= 0.5)),
        (
            "  alerts lost",
            f"{fa['lost']} of {fa['alerts']['accepted']} ({fa['report_statuses']})",
            "0",
            _ok(fa["lost"] == 0 and fa["alerts"]["errors"] == 0),
        ),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10000")
    parser.add_argument("--mb", default="50")
    parser.add_argument("--alerts", default="1600")
    parser.add_argument("--skip-queue", action="store_true", help="do not run bench/queue_bench.py")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    failed = []
    if _run("parse_bench.py", "--mb", args.mb, "--json", str(OUT / "parse.json")):
        failed.append("parse_bench")
    if _run("ingest_bench.py", "--n", args.n, "--mb", args.mb, "--alerts", args.alerts, "--json", str(OUT / "ingest.json")):
        failed.append("ingest_bench")
    if not args.skip_queue and (ROOT / "bench" / "queue_bench.py").exists() and _run("queue_bench.py"):
        failed.append("queue_bench")
    if "parse_bench" not in failed and "ingest_bench" not in failed:
        rows = table(json.loads((OUT / "parse.json").read_text()), json.loads((OUT / "ingest.json").read_text()))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        print("\nsummary (one run; ratios are the comparable figures)")
        header = ("figure", "measured", "aim", "")
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if failed:
        raise SystemExit(f"benchmarks that failed to run: {', '.join(failed)}")


if __name__ == "__main__":
    main()
