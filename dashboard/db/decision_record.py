"""The GateDecision row every decision leaves: one INSERT written out from the model's fields once per connection.

Every admission request and CI gate call records itself.  ``GateDecision.objects.create`` compiled the same INSERT
each time, which cost more CPU than running it.  The values are prepared by the model's own fields
(``pre_save`` then ``get_db_prep_save``, as the ORM's INSERT prepares them) and the id comes back with
``RETURNING`` (PostgreSQL, and SQLite from 3.35); the instance ends as ``create`` leaves it.  GateDecision has no
signal receivers, so none is skipped.
"""

from __future__ import annotations

import weakref

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from dashboard.models import GateDecision

_FIELDS: tuple[Field, ...] = tuple(field for field in GateDecision._meta.concrete_fields if not field.primary_key)  # type: ignore[misc]
_statements: weakref.WeakKeyDictionary[BaseDatabaseWrapper, str] = weakref.WeakKeyDictionary()


def _statement(conn: BaseDatabaseWrapper) -> str:
    found = _statements.get(conn)
    if found is None:
        qn = conn.ops.quote_name
        columns = ", ".join(qn(str(field.column)) for field in _FIELDS)
        marks = ", ".join(["%s"] * len(_FIELDS))
        found = _statements[conn] = f"INSERT INTO {qn(GateDecision._meta.db_table)} ({columns}) VALUES ({marks}) RETURNING {qn('id')}"  # noqa: S608
    return found


def insert_decision(record: GateDecision) -> GateDecision:
    """INSERT ``record`` (a new, unsaved GateDecision) and give it its id."""
    conn = connections[DEFAULT_DB_ALIAS]
    values = [field.get_db_prep_save(field.pre_save(record, True), conn) for field in _FIELDS]
    with conn.cursor() as cursor:
        cursor.execute(_statement(conn), values)
        record.pk = cursor.fetchone()[0]
    record._state.adding = False
    record._state.db = conn.alias
    return record
