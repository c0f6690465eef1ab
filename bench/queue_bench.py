"""The triage queue and the finding page at 100,000 findings for one team, on PostgreSQL: server time.

    .venv/bin/python bench/queue_bench.py [--findings 100000] [--requests 15] [--db vigil_queuebench] [--keep-db] [--no-docs]

Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth).  The script creates its own database,
migrates it, fills it with ``bulk_create`` (one team with --findings findings, each with an
occurrence, plus a second team of 10,000 the champion must not see), then requests each page with the
Django test client as a logged-in champion: a few warm-up requests, then --requests timed ones.  The
figure is the median (and the 90th percentile) of the time the test client takes for the request: the
server's time without a network.  It prints a table, writes it under "Triage queue" in
docs/performance.md (unless --no-docs) and drops the database (unless --keep-db).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import random
import re
import statistics
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
HEADING = "## Triage queue"
SEVERITIES = ["critical", "high", "medium", "low", "info", "unknown"]
PACKAGES = ["openssl", "zlib", "busybox", "musl", "curl", "libxml2", "lodash", "log4j-core", "express", "django"]
CHUNK = 5000


def populate(n: int) -> dict[str, Any]:
    """One team with ``n`` findings (and their events and occurrences), another with 10,000; returns ids to request."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from dashboard.models import Finding, FindingEvent, FindingOccurrence, Image, Membership, Role, Status, Team
    from dashboard.services import risk

    rng = random.Random(6)
    now = timezone.now()
    today = timezone.localdate()
    team = Team.objects.create(slug="bench", name="Bench")
    other = Team.objects.create(slug="other", name="Other")
    user = get_user_model().objects.create_user(username="champion", password="bench-password-1")
    Membership.objects.create(user=user, team=team, role=Role.CHAMPION)
    images = Image.objects.bulk_create(
        [Image(registry="registry.example.com", repository=f"bench/app{i}", team=team, first_seen=now, last_seen=now) for i in range(200)]
    )
    other_image = Image.objects.create(registry="registry.example.com", repository="other/app", team=other, first_seen=now, last_seen=now)
    statuses = (
        [Status.OPEN] * 12
        + [Status.TRIAGED] * 3
        + [Status.IN_PROGRESS]
        + [Status.FIXED] * 2
        + [Status.FALSE_POSITIVE, Status.RISK_ACCEPTED]
    )
    started = time.perf_counter()
    for start in range(0, n + 10000, CHUNK):
        rows = []
        for index in range(start, min(start + CHUNK, n + 10000)):
            mine = index < n
            severity = SEVERITIES[rng.randrange(len(SEVERITIES))]
            cvss = round(rng.uniform(1, 10), 1) if rng.random() < 0.8 else None
            epss = round(rng.random() ** 4, 5) if rng.random() < 0.7 else None
            kev = rng.random() < 0.01
            fixed = rng.random() < 0.6
            exposed = rng.random() < 0.2
            parts = risk.risk_parts(severity=severity, cvss=cvss, epss=epss, kev=kev, fix_available=fixed, exposed=exposed)
            first_seen = now - dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
            image = images[index % len(images)] if mine else other_image
            package = PACKAGES[index % len(PACKAGES)]
            rows.append(
                Finding(
                    fingerprint=f"bench-{index:010d}",
                    team=team if mine else other,
                    image=image,
                    kind="vulnerability",
                    source="trivy",
                    stream="scan",
                    scope_key=f"scan|trivy|image:{image.name}",
                    rule_id=f"CVE-{2015 + index % 10}-{10000 + index % 40000}",
                    title=f"{package}: a problem in the parser number {index}",
                    description="A flaw was found. " * 10,
                    severity=severity,
                    status=statuses[rng.randrange(len(statuses))],
                    package_name=package,
                    package_version=f"1.{index % 7}.{index % 13}",
                    fixed_version=f"1.{index % 7}.{index % 13 + 1}" if fixed else "",
                    cvss=cvss,
                    epss=epss,
                    kev=kev,
                    exposed=exposed,
                    risk_parts=parts,
                    risk_score=risk.score_of(parts),
                    references=[f"https://nvd.nist.gov/vuln/detail/CVE-{2015 + index % 10}-{10000 + index % 40000}"],
                    first_seen=first_seen,
                    last_seen=now,
                    status_changed_at=first_seen,
                    sla_started_on=first_seen.date(),
                    due_date=risk.due_date(severity=severity, start=first_seen.date(), sla_days=risk.sla_days_for(None)),
                )
            )
        created = Finding.objects.bulk_create(rows, batch_size=CHUNK)
        FindingOccurrence.objects.bulk_create(
            [FindingOccurrence(finding=f, tag="1.0.0", first_seen=f.first_seen, last_seen=now) for f in created], batch_size=CHUNK
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    sample = Finding.objects.filter(team=team, status="open").order_by("-risk_score", "id").first()
    assert sample is not None
    for hours in range(1, 20):  # a finding with a real history
        FindingEvent.objects.create(
            finding=sample,
            type="status",
            from_status="open",
            to_status="triaged",
            actor=user,
            reason="looked at it",
            created_at=now - dt.timedelta(hours=hours),
        )
    return {"user": user, "sample": sample.pk, "seconds": time.perf_counter() - started, "today": today.isoformat()}


def measure(client: Any, url: str, requests: int) -> dict[str, Any]:
    from django.db import connection

    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    executed: list[str] = []
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: executed.append(sql) or execute(sql, params, many, context)
    ):
        client.get(url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    times.sort()
    return {
        "url": url,
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(len(times) * 0.9))],
        "queries": len(executed),
    }


def deep_page_url(client: Any, pages: int) -> str:
    """The URL of page ``pages + 1`` of the default queue, reached by following its "Next" links."""
    url = "/findings/"
    for _ in range(pages):
        found = re.search(r'id="next-page" href="([^"]+)"', client.get(url).content.decode())
        assert found is not None, f"no next page after {url}"
        url = html.unescape(found.group(1))
    return url


def write_docs(rows: list[dict[str, Any]], n: int, requests: int, setup_seconds: float, command: str) -> None:
    lines = [
        HEADING,
        "",
        f"Server time of the champion's pages at {n:,} findings for one team (plus 10,000 of another team) on",
        f"PostgreSQL, measured by `{command}` on {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} from other",
        "work while measuring): the Django test client as a logged-in champion, median and 90th percentile of",
        f"{requests} requests after 3 warm-up requests, and the queries each request makes. The queue pages by",
        "keyset (no OFFSET) and counts up to 10,000 (1,000 with free text); the data was made with",
        f"`bulk_create` in {setup_seconds:.0f} s.",
        "",
        "| page | median | p90 | queries |",
        "|---|---:|---:|---:|",
        *[f"| `{row['label']}` | {row['median_ms']:.1f} ms | {row['p90_ms']:.1f} ms | {row['queries']} |" for row in rows],
        "",
        "Aim: under 150 ms server time for the queue and the finding page.",
        "",
    ]
    section = "\n".join(lines)
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n\n"
    if HEADING in text:
        before, _, rest = text.partition(HEADING)
        following = rest.find("\n## ")
        text = before + section + (rest[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--db", default="vigil_queuebench")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    url = f"postgres://postgres@127.0.0.1:5432/{args.db}"
    env = {**os.environ, "DATABASE_URL": url, "VIGIL_DB_CONN_MAX_AGE": "0"}
    _admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{args.db}"')
    try:
        _migrate(env)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
        import django

        django.setup()
        from django.test import Client

        made = populate(args.findings)
        client = Client()
        client.force_login(made["user"])
        pages = [
            ("queue: needs work, by risk", "/findings/"),
            ("queue: by severity", "/findings/?sort=severity"),
            ("queue: by due date", "/findings/?sort=due"),
            ("queue: first seen", "/findings/?sort=first_seen"),
            ("queue: critical+high, KEV, fix available", "/findings/?severity=critical,high&kev=yes&fix=yes"),
            ("queue: overdue", "/findings/?sla=overdue&sort=due"),
            ("queue: search 'openssl' (1 in 10 match)", "/findings/?q=openssl"),
            ("queue: search a CVE id", "/findings/?q=CVE-2019-1234"),
            ("queue: page 41 (keyset)", deep_page_url(client, 40)),
            ("finding page", f"/findings/{made['sample']}/"),
            ("champion's home", "/"),
        ]
        rows = []
        for label, page_url in pages:
            row = {"label": label, **measure(client, page_url, args.requests)}
            rows.append(row)
            print(f"{label:45} median {row['median_ms']:7.1f} ms   p90 {row['p90_ms']:7.1f} ms   {row['queries']:2d} queries", flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "queue.json").write_text(json.dumps({"findings": args.findings, "rows": rows, "setup_seconds": made["seconds"]}, indent=2))
        if not args.no_docs:
            command = "python bench/queue_bench.py" + (f" --findings {args.findings}" if args.findings != 100000 else "")
            write_docs(rows, args.findings, args.requests, made["seconds"], command)
            print(f"written to {DOCS.relative_to(ROOT)} under '{HEADING}'")
    finally:
        if not args.keep_db:
            _admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
