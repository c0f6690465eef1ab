"""Reading and folding the record of changes to what decisions read (models/policies.py DecisionChange).

PostgreSQL only: the rows are written by triggers (migration 0008_decision_changes), which SQLite does not get, so
there the memo is off and every decision reads its inputs.  Both statements are written out: the read runs before
every memoised decision and must cost one short statement; the fold is a data-modifying CTE (a DELETE feeding an
INSERT), which the ORM cannot express, and must be one statement so that a reader sees it whole or not at all.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db import DEFAULT_DB_ALIAS, connections

#: (image id, number of change rows, highest change id) per image, the global changes first (image id 0).
Changes = tuple[tuple[int, int, int | None], ...]

_READ = """
SELECT 0, count(*), max(id) FROM dashboard_decisionchange WHERE image_id = 0
UNION ALL
SELECT i.id, count(c.id), max(c.id) FROM dashboard_image i LEFT JOIN dashboard_decisionchange c ON c.image_id = i.id
    WHERE i.registry = ANY(%s) AND i.repository = ANY(%s) GROUP BY i.id
"""

# Images with more than one row keep one fresh row: its id is higher than any id handed out before, so the
# (count, highest id) of an image after a fold was never seen before it, and a memo key cannot come back.
_FOLD = """
WITH many AS (
    SELECT image_id, max(id) AS top FROM dashboard_decisionchange GROUP BY image_id HAVING count(*) > 1
), gone AS (
    DELETE FROM dashboard_decisionchange c USING many WHERE c.image_id = many.image_id AND c.id <= many.top
    RETURNING c.image_id
)
INSERT INTO dashboard_decisionchange (image_id) SELECT DISTINCT image_id FROM gone ORDER BY 1
"""


def changes_available() -> bool:
    """Whether this database records changes (PostgreSQL, with migration 0008's triggers)."""
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


def decision_changes(*, registries: Collection[str], repositories: Collection[str]) -> Changes:
    """The global changes and those of every image in ``registries`` x ``repositories``, in one statement."""
    conn = connections[DEFAULT_DB_ALIAS]
    with conn.cursor() as cursor:
        cursor.execute(_READ, [sorted(registries), sorted(repositories)])
        rows = cursor.fetchall()
    return tuple(sorted((int(pk), int(count), top) for pk, count, top in rows))


def decision_changes_fold() -> int:
    """Fold every image's rows into one; returns the rows written (0 on a database that records none)."""
    if not changes_available():
        return 0
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_FOLD)
        return int(cursor.rowcount)
