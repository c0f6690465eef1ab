"""The cheapest statement that proves a database connection answers (the readiness probe).

There is no ORM query without a table; ``SELECT 1`` touches none, so a probe never waits on a lock.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper


def database_ping(conn: BaseDatabaseWrapper) -> None:
    """Run ``SELECT 1`` on ``conn``; raises ``DatabaseError`` when the database does not answer."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
