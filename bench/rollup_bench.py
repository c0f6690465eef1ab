"""The base-image roll-up and the champion load at many findings and 50 teams, on PostgreSQL: server time.

    .venv/bin/python bench/rollup_bench.py [--findings 200000] [--requests 10] [--db vigil_rollupbench] [--keep-db] [--no-docs]

Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth).  The script creates its own database, fills it
with ``bulk_create``: 50 teams of 20 images each, every image on one of 25 bases (a shared OS layer, plus a layer
of its own), --findings Trivy OS-package findings spread over them (70 % active, 60 % with a fixed version) and a
nudge backlog; then requests each page as a manager of every team with the Django test client (3 warm-up
requests, then --requests timed ones) and prints median, p90 and queries.  Writes the table under "Base images and
champion load" in docs/performance.md (unless --no-docs) and drops the database (unless --keep-db).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.queue_bench import measure  # noqa: E402
from bench.stack import _admin, _migrate  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
OUT = ROOT / "bench" / "out"
HEADING = "## Base images and champion load"
SEVERITIES = ["critical", "high", "medium", "low", "unknown"]
BASES = [("alpine", f"3.{minor}.{patch}") for minor in range(12, 20) for patch in range(2)] + [("debian", f"1{n}.{n}") for n in range(9)]
CHUNK = 5000


def _layer(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def populate(n: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from dashboard.models import Finding, Image, Membership, Nudge, Role, Status, Team, Topic

    rng = random.Random(12)
    now = timezone.now()
    teams = [Team.objects.create(slug=f"team-{i:02d}", name=f"Team {i:02d}") for i in range(50)]
    manager = get_user_model().objects.create_user(username="manager", password="bench-password-1")
    Membership.objects.bulk_create([Membership(user=manager, team=team, role=Role.MANAGER) for team in teams])
    for index, team in enumerate(teams[:40]):  # ten teams without a champion
        champion = get_user_model().objects.create_user(username=f"champion{index}", password="bench-password-1")
        Membership.objects.create(user=champion, team=team, role=Role.CHAMPION)
    images = Image.objects.bulk_create(
        [
            Image(registry="registry.example.com", repository=f"{team.slug}/app{i}", team=team, first_seen=now, last_seen=now)
            for team in teams
            for i in range(20)
        ]
    )
    base_of = {image.pk: BASES[rng.randrange(len(BASES))] for image in images}
    statuses = [Status.OPEN] * 5 + [Status.TRIAGED, Status.IN_PROGRESS] + [Status.FIXED] * 3
    started = time.perf_counter()
    for start in range(0, n, CHUNK):
        rows = []
        for index in range(start, min(start + CHUNK, n)):
            image = images[index % len(images)]
            family, version = base_of[image.pk]
            in_base = rng.random() < 0.8
            layer = _layer(f"{family}{version}") if in_base else _layer(f"own{image.pk}")
            fixed = f"1.{index % 9}-r1" if rng.random() < 0.6 else ""
            rows.append(
                Finding(
                    fingerprint=f"rollup-{index:010d}",
                    team_id=image.team_id,
                    image=image,
                    kind="vulnerability",
                    source="trivy",
                    scope_key=f"scan|trivy|image:{image.name}",
                    rule_id=f"CVE-2023-{10000 + index % 40000}",
                    severity=SEVERITIES[index % len(SEVERITIES)],
                    status=statuses[rng.randrange(len(statuses))],
                    package_name=f"pkg{index % 300}",
                    package_version="1.0-r0",
                    fixed_version=fixed,
                    details={
                        "class": "os-pkgs",
                        "target": f"{image.name}:1 ({family} {version})",
                        "layer_diff_id": layer,
                        "fixed_versions": [fixed] if fixed else None,
                    },
                    first_seen=now,
                    last_seen=now,
                    status_changed_at=now,
                    due_date=(now - dt.timedelta(days=index % 60 - 30)).date(),
                )
            )
        Finding.objects.bulk_create(rows, batch_size=CHUNK)
    topic = Topic.objects.create(slug="bench", name="Bench", summary="", keys=["vigil:bench"])
    Nudge.objects.bulk_create(
        [
            Nudge(
                team=team,
                topic=topic,
                rule="repeated_class",
                reason="bench",
                period=now.date() - dt.timedelta(weeks=week),
                created_at=now,
                state=state,
            )
            for team in teams
            for week, state in enumerate(("new", "opened", "done", "snoozed"))
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"user": manager, "seconds": time.perf_counter() - started}


def timed_refresh(user: Any) -> dict[str, float]:
    """Seconds of the hourly refresh, and of counting the same groups from the findings as each request once did."""
    from dashboard.selectors.base_images import base_image_groups
    from dashboard.services.base_image_counts import base_image_counts_refresh

    started = time.perf_counter()
    rows = base_image_counts_refresh()
    refresh = time.perf_counter() - started
    live = []
    for _ in range(3):
        started = time.perf_counter()
        base_image_groups(user=user, live=True)
        live.append((time.perf_counter() - started) * 1000)
    return {"refresh_s": refresh, "rows": rows, "live_ms": sorted(live)[1]}


def write_docs(rows: list[dict[str, Any]], n: int, requests: int, made: dict[str, Any], command: str) -> None:
    refresh = made["refresh"]
    lines = [
        HEADING,
        "",
        f"Server time at {n:,} Trivy OS-package findings (70 % active) in 1,000 images of 50 teams on PostgreSQL, measured",
        f"by `{command}` on {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}): the Django test client as a manager",
        f"of every team, median and 90th percentile of {requests} requests after 3 warm-up requests, and the queries each",
        f"makes (data made with `bulk_create` in {made['seconds']:.0f} s). The roll-up reads the counts the hourly snapshot",
        f"task stores (refreshed in {refresh['refresh_s']:.2f} s here, {refresh['rows']:,} rows); counting the same groups from",
        f"the findings, as each request did before, took {refresh['live_ms']:.0f} ms in this run. The champion load counts",
        "active findings per team in one grouped query.",
        "",
        "| page | median | p90 | queries |",
        "|---|---:|---:|---:|",
        *[f"| `{row['label']}` | {row['median_ms']:.1f} ms | {row['p90_ms']:.1f} ms | {row['queries']} |" for row in rows],
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
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=200000)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--db", default="vigil_rollupbench")
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
        made["refresh"] = timed_refresh(made["user"])
        print(
            f"hourly refresh of the roll-up's counts: {made['refresh']['refresh_s']:.2f} s, {made['refresh']['rows']:,} rows;"
            f" the same groups counted from the findings now: median {made['refresh']['live_ms']:.0f} ms",
            flush=True,
        )
        client = Client()
        client.force_login(made["user"])
        pages = [
            ("base images page", "/base-images/"),
            ("GET /api/v1/base-images/", "/api/v1/base-images/"),
            ("base images CSV", "/base-images/export.csv"),
            ("champion load page", "/posture/champions/"),
        ]
        rows = []
        for label, page_url in pages:
            row = {"label": label, **measure(client, page_url, args.requests)}
            rows.append(row)
            print(f"{label:30} median {row['median_ms']:7.1f} ms   p90 {row['p90_ms']:7.1f} ms   {row['queries']:2d} queries", flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "rollup.json").write_text(
            json.dumps({"findings": args.findings, "rows": rows, "setup_seconds": made["seconds"], "refresh": made["refresh"]}, indent=2)
        )
        if not args.no_docs:
            command = "python bench/rollup_bench.py" + (f" --findings {args.findings}" if args.findings != 200000 else "")
            write_docs(rows, args.findings, args.requests, made, command)
            print(f"written to {DOCS.relative_to(ROOT)} under '{HEADING}'")
    finally:
        if not args.keep_db:
            _admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
