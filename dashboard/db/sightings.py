"""Workload sightings: one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`` for many rows.

``QuerySet.bulk_create(update_conflicts=True)`` cannot say "rewrite the row only when its last sighting is older
than a step" nor hand back which rows it wrote, and reading them first would take a lock-free race plus a
second round trip.  Both PostgreSQL and SQLite (3.35+) take this statement.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from dashboard.models import WorkloadSighting

_COLUMNS = "cluster, namespace, workload_kind, workload_name, image_id, tag, digest, team_id, source, first_seen, last_seen"


def upsert_sightings(rows: list[list[Any]], *, stale_before: dt.datetime) -> list[tuple[Any, Any]]:
    """Insert the rows (values in ``_COLUMNS`` order), or refresh those last seen before ``stale_before``;
    returns ``(image_id, first_seen)`` of the rows inserted or rewritten."""
    table = WorkloadSighting._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    sql = (
        f"INSERT INTO {table} ({_COLUMNS}) VALUES {values} "  # noqa: S608 - the table name is the model's; values are parameters
        "ON CONFLICT (cluster, namespace, workload_kind, workload_name, image_id, tag, digest) DO UPDATE "
        "SET last_seen = excluded.last_seen, source = excluded.source, team_id = COALESCE(excluded.team_id, "
        f"{table}.team_id) WHERE {table}.last_seen < %s RETURNING image_id, first_seen"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(value for row in rows for value in row), stale_before])
        return [tuple(row) for row in cursor.fetchall()]
