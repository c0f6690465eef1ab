"""Taking the admission webhook's repeats (models/reports.py AdmissionRepeat) grouped by the report they repeat.

One statement on PostgreSQL: a data-modifying CTE deletes the repeat rows of up to ``limit`` reports and the
outer SELECT counts what it deleted, per report (``DELETE ... RETURNING`` feeding a ``GROUP BY``).  Not the ORM:
it has no form for it, and a SELECT then a DELETE would count a repeat committed between them without deleting it,
or delete one without counting it.  Here every row is counted by the one statement that deleted it: a concurrent
flush blocks on the rows this one deletes and then skips them, and a repeat inserted meanwhile is outside this
statement's snapshot, left for the next run.  In the caller's transaction: rolled back, the rows are all still
there.  SQLite (the embedded default) selects the rows, then deletes them by id inside the same transaction, which
SQLite's ``BEGIN IMMEDIATE`` (settings) holds alone against every other writer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db import connection

from dashboard.models import AdmissionRepeat

TAKE = """
WITH chosen AS (SELECT DISTINCT "report_id" FROM "dashboard_admissionrepeat" ORDER BY "report_id" LIMIT %s),
gone AS (
    DELETE FROM "dashboard_admissionrepeat" AS r USING chosen WHERE r."report_id" = chosen."report_id"
    RETURNING r."report_id", r."at"
)
SELECT "report_id", count(*), min("at"), max("at") FROM gone GROUP BY "report_id" ORDER BY min("at"), "report_id"
"""

#: Ids deleted per statement on SQLite (its limit on parameters).
_DELETE_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class Taken:
    """A report's repeats, deleted: how many, the first and the latest one's time."""

    report_id: Any
    count: int
    first: dt.datetime
    latest: dt.datetime


# The report is checked in the statement itself: a repeat of a report that is gone (an operator deleted it inside
# its minute) inserts nothing, so the caller can store the event in full, in or out of a transaction (the foreign
# key is checked only at commit).
INSERT = """
INSERT INTO "dashboard_admissionrepeat" ("report_id", "at")
    SELECT %s, %s WHERE EXISTS (SELECT 1 FROM "dashboard_report" WHERE "id" = %s)
"""


def insert_repeat(*, report_id: Any, at: dt.datetime) -> bool:
    """Count one repeat of ``report_id``; False (nothing written) when that report is gone."""
    value = AdmissionRepeat._meta.get_field("report").get_db_prep_value(report_id, connection)
    moment = AdmissionRepeat._meta.get_field("at").get_db_prep_value(at, connection)
    with connection.cursor() as cursor:
        cursor.execute(INSERT, [value, moment, value])
        return bool(cursor.rowcount)


def take_repeats(*, limit: int) -> list[Taken]:
    """Delete the repeats of up to ``limit`` reports and return them counted per report, oldest first.  Call it
    inside a transaction that also stores what they become: a rollback puts them all back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(TAKE, [limit])
            return [Taken(report_id, count, first, latest) for report_id, count, first, latest in cursor.fetchall()]
    chosen = list(AdmissionRepeat.objects.order_by("report_id").values_list("report_id", flat=True).distinct()[:limit])
    rows = list(AdmissionRepeat.objects.filter(report_id__in=chosen).values_list("id", "report_id", "at"))
    ids = [pk for pk, _, _ in rows]
    for start in range(0, len(ids), _DELETE_CHUNK):
        AdmissionRepeat.objects.filter(pk__in=ids[start : start + _DELETE_CHUNK]).delete()
    groups: dict[Any, list[dt.datetime]] = {}
    for _, report_id, at in rows:
        groups.setdefault(report_id, []).append(at)
    taken = [Taken(report_id, len(times), min(times), max(times)) for report_id, times in groups.items()]
    return sorted(taken, key=lambda group: (group.first, group.report_id))
