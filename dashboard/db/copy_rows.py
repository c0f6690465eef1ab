"""Insert many rows at once: PostgreSQL ``COPY`` into a temporary table, then one ``INSERT ... SELECT``.

``QuerySet.bulk_create`` prepares every value of every row through its model field and compiles a
multi-row ``INSERT`` in Python: for 10,000 findings x 45 columns that was most of a first import's
CPU.  ``insert_rows`` takes plain dicts (column attname -> value), writes them as COPY text, and lets
PostgreSQL do the conflict handling (``ON CONFLICT``) and hand back what it inserted (``RETURNING``).
Other databases (the embedded SQLite default) go through ``bulk_create``, with the same results.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

from django.db import connections, models, router

#: Rows per COPY + INSERT; bounds the memory of one round.
BATCH = 5000
_NULL = "\\N"

Converter = Callable[[Any], str]


def _escape(text: str) -> str:
    """A value in PostgreSQL's COPY text format (backslash escapes; NUL cannot be stored anyway)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _converter(field: models.Field[Any, Any]) -> Converter:
    kind = field.get_internal_type()
    if kind == "JSONField":
        encoder = cast("models.JSONField[Any]", field).encoder
        return lambda value: _NULL if value is None else _escape(json.dumps(value, cls=encoder))
    if kind == "BooleanField":
        return lambda value: _NULL if value is None else ("t" if value else "f")
    if kind in ("DateTimeField", "DateField"):
        return lambda value: _NULL if value is None else cast("dt.date", value).isoformat()
    if kind in ("FloatField", "IntegerField", "PositiveIntegerField", "SmallIntegerField", "BigIntegerField", "PositiveSmallIntegerField"):
        return lambda value: _NULL if value is None else repr(value)
    if kind in ("ForeignKey", "OneToOneField", "AutoField", "BigAutoField", "UUIDField"):
        return lambda value: _NULL if value is None else str(value)
    return lambda value: _NULL if value is None else _escape(str(value))


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    return cast("models.Field[Any, Any]", model._meta.get_field(name))


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    """Every column an INSERT writes: concrete, not the auto primary key, not generated."""
    pk = model._meta.pk
    return [
        cast("models.Field[Any, Any]", field)
        for field in model._meta.concrete_fields
        if not (field is pk and field.get_internal_type() in ("AutoField", "BigAutoField")) and not field.generated
    ]


def insert_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    unique_fields: Sequence[str] = (),
    update_fields: Sequence[str] = (),
    returning: Sequence[str] = (),
    batch_size: int = BATCH,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (attname -> value; missing columns take the field's default).

    With ``unique_fields``, a row that conflicts is skipped, or with ``update_fields`` those fields are
    updated from it.  Returns the ``returning`` columns of the rows inserted or updated (unordered).
    """
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return _insert_with_orm(model, rows, unique_fields=unique_fields, update_fields=update_fields, returning=returning)
    fields = _columns(model)
    # (attname, default, converter) per column; a row's missing keys take the field's default.
    columns = [(field.attname, field.get_default(), _converter(field)) for field in fields]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(str(field.column)) for field in fields)
    temp = quote(f"vigil_copy_{uuid.uuid4().hex[:16]}")
    conflict = ""
    if unique_fields:
        targets = ", ".join(quote(str(_field(model, name).column)) for name in unique_fields)
        if update_fields:
            sets = ", ".join(
                f"{quote(str(_field(model, name).column))} = EXCLUDED.{quote(str(_field(model, name).column))}" for name in update_fields
            )
            conflict = f" ON CONFLICT ({targets}) DO UPDATE SET {sets}"
        else:
            conflict = f" ON CONFLICT ({targets}) DO NOTHING"
    returned = f" RETURNING {', '.join(quote(str(_field(model, name).column)) for name in returning)}" if returning else ""
    out: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        # Identifiers come from the model's metadata; every value travels in the COPY stream.
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} AS SELECT {column_list} FROM {table} WITH NO DATA")  # noqa: S608
        try:
            for start in range(0, len(rows), batch_size):
                buffer = io.StringIO()
                buffer.writelines(
                    "\t".join([convert(row.get(name, default)) for name, default, convert in columns]) + "\n"
                    for row in rows[start : start + batch_size]
                )
                buffer.seek(0)
                cursor.cursor.copy_expert(f"COPY {temp} ({column_list}) FROM STDIN", buffer)  # type: ignore[attr-defined]
                cursor.execute(f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {temp}{conflict}{returned}")  # noqa: S608
                if returning:
                    out.extend(cursor.fetchall())
                if start + batch_size < len(rows):  # the last round's rows go with the table
                    cursor.execute(f"TRUNCATE {temp}")
        finally:
            cursor.execute(f"DROP TABLE {temp}")
    return out


def _insert_with_orm(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """The same through ``bulk_create`` (SQLite: one writer at a time, so the existence check cannot race)."""
    manager = model._default_manager
    if update_fields:
        objs = [model(**row) for row in rows]
        manager.bulk_create(objs, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)
        return [tuple(getattr(obj, _field(model, name).attname) for name in returning) for obj in objs] if returning else []
    if unique_fields:
        if len(unique_fields) != 1:
            raise ValueError("skipping conflicts needs exactly one unique field on this database")
        key = _field(model, unique_fields[0]).attname
        wanted = [row[key] for row in rows]
        taken: set[Any] = set()
        for start in range(0, len(wanted), 500):
            taken.update(manager.filter(**{f"{key}__in": wanted[start : start + 500]}).values_list(key, flat=True))
        rows = [row for row in rows if row[key] not in taken]
    objs = [model(**row) for row in rows]
    manager.bulk_create(objs)  # SQLite returns the new primary keys
    return [tuple(getattr(obj, _field(model, name).attname) for name in returning) for obj in objs] if returning else []
