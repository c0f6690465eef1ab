"""The floor of issue 4's first-import figure: a PostgreSQL COPY of the report's normalised rows into an
unindexed table shaped like the findings table, measured in the same run as the import (bench/ingest_bench.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import statistics
import time
from typing import Any

from bench import stack as stack_mod

FLOOR_TABLE = "bench_copy_floor"
#: The floor is the median of this many COPYs of the same rows (each into the emptied table, committed).
FLOOR_ROUNDS = 3


def floor_rows(data: bytes, *, team_id: int, image_id: int | None) -> tuple[list[str], list[list[Any]]]:
    """The parsed findings as the rows the findings table stores (the columns apply.apply_report fills)."""
    from scanners import registry

    _, result = registry.parse_bytes(data)
    now = dt.datetime.now(dt.UTC)
    columns = [
        "id", "fingerprint", "team_id", "image_id", "kind", "source", "stream", "scope_key", "rule_id", "title", "description",
        "severity", "status", "package_name", "package_version", "fixed_version", "package_type", "package_path",
        "resource_cluster", "resource_namespace", "resource_kind", "resource_name", "cvss", "kev", "cwe", "references", "details",
        "status_hint", "risk_score", "occurrences", "first_seen", "last_seen", "status_changed_at", "due_date",
        "owner_source", "owner_reason", "exposed", "risk_parts",
    ]  # fmt: skip
    rows = []
    for number, f in enumerate(result.findings, start=1):
        package, resource, image = f.package, f.resource, f.image
        rows.append(
            [
                number, f.fingerprint, team_id, image_id, f.kind, f.source, "scan",
                f"scan|{f.source}|image:{image.name if image else '-'}", f.rule_id, f.title, f.description, f.severity, "open",
                package.name if package else "", package.version if package else "", package.fixed_version if package else "",
                package.type if package else "", package.path if package else "",
                resource.cluster if resource else "", resource.namespace if resource else "", resource.kind if resource else "",
                resource.name if resource else "", f.cvss, False, json.dumps(f.cwe), json.dumps(f.references), json.dumps(f.details),
                f.status_hint, (f.cvss or 4.0) * 5.5, 1, now, now, now, (now + dt.timedelta(days=30)).date(),
                "report", "the report's team", False, json.dumps({"severity": (f.cvss or 4.0) * 5.5}),
            ]
        )  # fmt: skip
    return columns, rows


def copy_floor(stack: stack_mod.Stack, data: bytes) -> dict[str, float]:
    """COPY the report's normalised rows into an unindexed table shaped like the findings table."""
    conn = stack.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM dashboard_team WHERE slug = 'bench'")
        team_id = cur.fetchone()[0]
        cur.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        # CREATE TABLE AS copies the columns only: no index, no constraint, no default.
        cur.execute(f"CREATE TABLE {FLOOR_TABLE} AS SELECT * FROM dashboard_finding WITH NO DATA")  # noqa: S608 - a constant
    conn.commit()
    started = time.perf_counter()
    columns, rows = floor_rows(data, team_id=team_id, image_id=None)
    parsed = time.perf_counter()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([r"\N" if value is None else value for value in row])
    serialised = time.perf_counter()
    quoted = ", ".join(f'"{column}"' for column in columns)
    rounds = []
    for _ in range(FLOOR_ROUNDS):  # a single COPY on a shared machine varies 2x from one run to the next
        with conn.cursor() as cur:
            cur.execute(f"TRUNCATE {FLOOR_TABLE}")
        conn.commit()
        buffer.seek(0)
        began = time.perf_counter()
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY {FLOOR_TABLE} ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        conn.commit()
        rounds.append(time.perf_counter() - began)
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {FLOOR_TABLE}")  # noqa: S608 - a constant
        count = cur.fetchone()[0]
        cur.execute(f"DROP TABLE {FLOOR_TABLE}")
    conn.commit()
    conn.close()
    return {
        "rows": count,
        "copy_seconds": statistics.median(rounds),
        "copy_rounds": rounds,
        "parse_seconds": parsed - started,
        "csv_seconds": serialised - parsed,
        "csv_bytes": len(buffer.getvalue()),
    }
