"""Folding the active-finding deltas (models/posture.py ActiveFindingDelta) into one row per team and severity.

PostgreSQL's triggers add a row per statement that changes what is active; folded hourly by the snapshot task,
the rows the posture API sums stay a few hundred.  One statement: it deletes the rows its snapshot sees and
inserts their sums, so rows other transactions add meanwhile are kept and counted once.  Not the ORM: a
data-modifying CTE (DELETE ... RETURNING feeding an INSERT) has no ORM form, and two statements would lose or
double-count deltas committed between them.  The triggers that write the deltas live in migration 0002_postgresql.
"""

from __future__ import annotations

from django.db import connection

FOLD = """
WITH folded AS (DELETE FROM dashboard_activefindingdelta RETURNING team_id, severity, n)
INSERT INTO dashboard_activefindingdelta (team_id, severity, n)
    SELECT team_id, severity, sum(n) FROM folded GROUP BY team_id, severity HAVING sum(n) <> 0
"""


def active_counts_fold() -> int:
    """Fold the deltas; returns the rows left (0 where the database keeps none: SQLite counts live)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(FOLD)
        return int(cursor.rowcount)
