"""PostgreSQL advisory locks: a lock on a number, not on a row.

The ORM locks rows (``select_for_update``); serialising a kind of work that has no one row to lock (the
apply of event reports, which touches the same few scopes, images and findings from many transactions) needs
``pg_advisory_xact_lock``, released by PostgreSQL itself at commit or rollback.  Elsewhere (the embedded SQLite
default) writes are serialised by the database already, so this does nothing.
"""

from __future__ import annotations

from django.db import connection


def advisory_xact_lock(key: int) -> None:
    """Wait for, then hold until the end of the current transaction, the advisory lock ``key`` (a 64-bit int)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
