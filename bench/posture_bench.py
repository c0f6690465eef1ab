"""Posture at scale on PostgreSQL: 1,000,000 findings of 50 teams, 365 days of snapshots.

    .venv/bin/python bench/posture_bench.py [--findings 1000000] [--teams 50] [--days 365] [--requests 30]
                                            [--db vigil_posturebench] [--keep-db] [--no-docs]

Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth).  The script creates its own database, migrates
it and fills it in SQL (generate_series, no Python per row): --findings findings spread over the teams and
1,000 images, first seen over the last 400 days, 55 % fixed after 0 to 120 days, a few false positives and
risk acceptances, each with its events (created, and fixed or the status change); scan reports every 10 days
per image (a fifth of the images stopped being scanned a month ago: stale).  Then, each in a child process so
its peak memory (max RSS) is its own:

- the daily snapshot (``snapshot_take``: today's rows of every team and the organisation);
- the backfill of --days days (``manage.py backfill_snapshots --days N``), which makes the history the pages read.

Then it requests, as a manager of every team, the posture page (365 and 90 days), the team comparison, shift
left (90 and 365 days, and its CSV) and the API (all teams, and one team) with the Django test client: 3 warm-up
requests, then --requests timed ones; it prints median, p95, the queries of one request and whether any of them
names the findings table, writes them under "Posture" in
docs/performance.md (unless --no-docs) and drops the database (unless --keep-db).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import _admin, _migrate  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
OUT = ROOT / "bench" / "out"
HEADING = "## Posture"

FILL_SQL = """
SELECT setseed(0.42);
INSERT INTO dashboard_team (slug, name, sla_days, four_eyes, created_at)
    SELECT 'team-' || g, 'Team ' || lpad(g::text, 2, '0'), '{{}}', false, now() FROM generate_series(1, {teams}) g;
INSERT INTO dashboard_image (registry, repository, team_id, labels, first_seen, last_seen)
    SELECT 'registry.example.com', 'bench/app' || g, (SELECT min(id) FROM dashboard_team) + (g % {teams}), '{{}}', now(), now()
    FROM generate_series(0, 999) g;
CREATE TEMP TABLE gen AS
    SELECT g, (array['critical','high','medium','low','info','unknown'])[1 + floor(random() * 6)::int] AS severity,
           now() - random() * interval '400 days' AS first_seen, random() AS r_fix, random() AS r_age, random() AS r_stream,
           (SELECT min(id) FROM dashboard_image) + floor(random() * 1000)::int AS image_id
    FROM generate_series(1, {findings}) g;
INSERT INTO dashboard_finding (
    fingerprint, team_id, image_id, kind, source, stream, scope_key, rule_id, title, description, severity, status,
    package_name, package_version, fixed_version, package_type, package_path, resource_cluster, resource_namespace,
    resource_kind, resource_name, kev, cwe, "references", details, content_hash, status_hint, risk_score, occurrences,
    first_seen, last_seen, status_changed_at, fixed_at, due_date, owner_source, owner_reason, exposed, risk_parts, sla_started_on,
    entry_hash)
SELECT md5(g::text) || md5((g * 7)::text), i.team_id, gen.image_id,
       CASE WHEN r_stream < 0.85 THEN 'vulnerability' WHEN r_stream < 0.95 THEN 'policy' ELSE 'runtime' END,
       CASE WHEN r_stream < 0.85 THEN 'trivy' WHEN r_stream < 0.95 THEN 'kyverno' ELSE 'falco' END,
       CASE WHEN r_stream < 0.85 THEN 'scan' WHEN r_stream < 0.95 THEN 'admission' ELSE 'runtime' END,
       'scan|trivy|image:' || gen.image_id,
       CASE WHEN r_stream < 0.85 THEN 'CVE-2024-' || (1000 + g % 400) WHEN r_stream < 0.95 THEN 'disallow-privileged/rule-' || (g % 20)
            ELSE 'Terminal shell in container' END,
       'bench finding', '', gen.severity,
       CASE WHEN r_fix < 0.55 AND gen.first_seen + r_age * interval '120 days' < now() THEN 'fixed'
            WHEN r_fix < 0.58 THEN 'false_positive' WHEN r_fix < 0.60 THEN 'risk_accepted' WHEN r_fix < 0.70 THEN 'triaged' ELSE 'open' END,
       CASE WHEN r_stream < 0.85 THEN (array['openssl','zlib','busybox','musl','curl'])[1 + g % 5] ELSE '' END,
       '1.0', '', CASE WHEN r_stream < 0.85 THEN 'alpine' ELSE '' END, '', '', '', '', '',
       false, '[]', '[]', '{{}}', '', '', 0, 1, gen.first_seen, gen.first_seen, gen.first_seen,
       CASE WHEN r_fix < 0.55 AND gen.first_seen + r_age * interval '120 days' < now()
            THEN gen.first_seen + r_age * interval '120 days' END,
       (gen.first_seen::date + CASE gen.severity WHEN 'critical' THEN 7 WHEN 'high' THEN 30 WHEN 'medium' THEN 90 WHEN 'low' THEN 180 END),
       'rule', '', false, '{{}}', gen.first_seen::date, ''
FROM gen JOIN dashboard_image i ON i.id = gen.image_id;
INSERT INTO dashboard_findingevent (finding_id, type, from_status, to_status, reason, created_at, data)
    SELECT id, CASE status WHEN 'fixed' THEN 'fixed' ELSE 'status' END, 'open', status, '',
           COALESCE(fixed_at, first_seen + interval '2 days'), '{{}}'
    FROM dashboard_finding WHERE status <> 'open' AND COALESCE(fixed_at, first_seen + interval '2 days') < now();
ANALYZE;
"""


def populate(*, findings: int, teams: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from dashboard.models import Image, Membership, Report, ReportStatus, Role, Team

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in FILL_SQL.format(findings=findings, teams=teams).split(";\n"):
            if statement.strip():
                cursor.execute(statement)
    now = timezone.now()
    images = list(Image.objects.values_list("id", "team_id"))
    reports = []
    for index, (image_id, team_id) in enumerate(images):
        last = 30 if index % 5 == 0 else index % 10  # a fifth stopped being scanned a month ago
        for days_ago in range(last, 365, 10):
            observed = now - dt.timedelta(days=days_ago)
            reports.append(
                Report(
                    team_id=team_id,
                    image_id=image_id,
                    stream="scan",
                    status=ReportStatus.DONE,
                    content_sha256=f"{image_id:032x}{days_ago:032x}",
                    observed_at=observed,
                    received_at=observed,
                )
            )
    Report.objects.bulk_create(reports, batch_size=5000)
    user = get_user_model().objects.create_user(username="manager", password="bench-password-1")
    Membership.objects.bulk_create([Membership(user=user, team=team, role=Role.MANAGER) for team in Team.objects.all()])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM dashboard_findingevent")
        events = cursor.fetchone()[0]
    return {"user": user, "seconds": time.perf_counter() - started, "events": events, "reports": len(reports)}


def child(env: dict[str, str], code: str) -> dict[str, float]:
    """Run ``code`` in ``manage.py shell`` in a child process: wall seconds of the code and the child's own peak RSS (MiB)."""
    timed = (
        "import resource, time, json; started = time.perf_counter()\n"
        + code
        + "\nprint(json.dumps({'seconds': time.perf_counter() - started,"
        + " 'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", timed], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def fetch(client: Any, url: str) -> bytes:
    """The whole body: a streamed response (the CSV exports) is made while it is read, so it is read inside the timing."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return b"".join(response.streaming_content) if response.streaming else response.content


def measure(client: Any, url: str, requests: int) -> dict[str, Any]:
    from django.db import connection

    for _ in range(3):
        fetch(client, url)
    executed: list[str] = []
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: executed.append(sql) or execute(sql, params, many, context)
    ):
        fetch(client, url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        fetch(client, url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "url": url,
        "median_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
        "queries": len(executed),
        # Whether any query of the request names the findings table (the pages must not read it).
        "reads_findings": any('"dashboard_finding"' in sql for sql in executed),
    }


def write_docs(rows: list[dict[str, Any]], jobs: dict[str, dict[str, float]], made: dict[str, Any], args: Any, command: str) -> None:
    lines = [
        HEADING,
        "",
        f"{args.findings:,} findings of {args.teams} teams ({made['events']:,} events, {made['reports']:,} scan reports) and",
        f"{args.days} days of snapshots ({(args.teams + 1) * args.days:,} rows) on PostgreSQL, measured by `{command}` on",
        f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f});",
        f"data made in SQL in {made['seconds']:.0f} s.",
        "",
        "| job (child process) | seconds | peak memory (max RSS) |",
        "|---|---:|---:|",
        *[
            f"| {label} | {jobs[name]['seconds']:.1f} s | {jobs[name]['peak_mib']:.0f} MiB |"
            for name, label in (
                ("snapshot", "daily snapshot, every team and the organisation"),
                ("backfill", f"backfill of {args.days} days"),
            )
        ],
        "",
        f"Pages and API as a manager of all {args.teams} teams (Django test client, server time without a network):",
        f"median and 95th percentile of {args.requests} requests after 3 warm-up ones, and the queries of one request.",
        "They read only snapshots (never the findings table).",
        "",
        "| request | median | p95 | queries | reads the findings table |",
        "|---|---:|---:|---:|---|",
        *[
            f"| `{row['label']}` | {row['median_ms']:.1f} ms | {row['p95_ms']:.1f} ms | {row['queries']} |"
            + (" yes |" if row["reads_findings"] else " no |")
            for row in rows
        ],
        "",
        "Aim: p95 at most 150 ms with at most 20 queries.",
        "",
    ]
    section = "\n".join(lines)
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n\n"
    if HEADING + "\n" in text:
        before, _, rest = text.partition(HEADING + "\n")
        following = rest.find("\n## ")
        text = before + section + (rest[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def populated(args: Any, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Make the data, then take the daily snapshot and the backfill, each in a child process."""
    made = populate(findings=args.findings, teams=args.teams)
    print(f"data: {args.findings:,} findings, {made['events']:,} events, {made['reports']:,} reports in {made['seconds']:.0f} s")
    jobs = {"snapshot": child(env, "from dashboard.services.snapshots import snapshot_take; snapshot_take()")}
    print(f"daily snapshot: {jobs['snapshot']['seconds']:.1f} s, peak {jobs['snapshot']['peak_mib']:.0f} MiB", flush=True)
    jobs["backfill"] = child(env, f"from django.core.management import call_command; call_command('backfill_snapshots', days={args.days})")
    print(f"backfill {args.days} days: {jobs['backfill']['seconds']:.1f} s, peak {jobs['backfill']['peak_mib']:.0f} MiB", flush=True)
    return made, jobs


def reused() -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from dashboard.models import FindingEvent, Report

    user = get_user_model().objects.get(username="manager")
    return {"user": user, "seconds": 0.0, "events": FindingEvent.objects.count(), "reports": Report.objects.count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--db", default="vigil_posturebench")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="measure the pages on the database of a --keep-db run")
    args = parser.parse_args()

    url = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    env = {**os.environ, "DATABASE_URL": url, "VIGIL_DB_CONN_MAX_AGE": "0"}
    env.pop("CELERY_BROKER_URL", None)
    if not args.reuse_db:
        _admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{args.db}"')
    try:
        _migrate(env)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
        import django

        django.setup()
        from django.test import Client

        if args.reuse_db:
            made, jobs = reused(), {}
        else:
            made, jobs = populated(args, env)
        client = Client()
        client.force_login(made["user"])
        requests = [
            ("posture page, 365 days", f"/posture/?days={args.days}"),
            ("posture page, 90 days", "/posture/?days=90"),
            ("team comparison, 365 days", f"/posture/teams/?days={args.days}"),
            ("shift left, 90 days", "/posture/shift-left/?days=90"),
            ("shift left, 365 days", f"/posture/shift-left/?days={args.days}"),
            ("CSV shift left, 365 days", f"/posture/export.csv?series=shift_left&days={args.days}"),
            ("API posture, all teams, 365 days", f"/api/v1/posture/?days={args.days}"),
            ("API posture, one team, 365 days", f"/api/v1/posture/?team=team-1&days={args.days}"),
            ("API team comparison, 365 days", f"/api/v1/posture/teams/?days={args.days}"),
        ]
        rows = []
        for label, page in requests:
            row = {"label": label, **measure(client, page, args.requests)}
            rows.append(row)
            findings = "reads findings" if row["reads_findings"] else "no findings table"
            print(
                f"{label:36} median {row['median_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms   {row['queries']:2d} queries   {findings}",
                flush=True,
            )
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "posture.json").write_text(
            json.dumps({"args": vars(args), "jobs": jobs, "rows": rows, "setup_seconds": made["seconds"]}, indent=2)
        )
        if not args.no_docs:
            command = "python bench/posture_bench.py" + (f" --findings {args.findings}" if args.findings != 1_000_000 else "")
            write_docs(rows, jobs, made, args, command)
            print(f"written to {DOCS.relative_to(ROOT)} under '{HEADING}'")
    finally:
        if not args.keep_db:
            _admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
