"""The image and the policy an enforcement decision reads: statements written out as text, not querysets.

Every admission request and CI gate call looks up the image (with the versions it was seen at) and the deciding
policy.  As querysets that was three statements whose compiling cost more CPU than PostgreSQL spent running them;
here the image and its matching versions are one statement (a ``LEFT JOIN``), and the policy with its team another.
The instances are built as the ORM builds them (the same columns, the fields' and backend's converters,
``Model.from_db``), so callers get what ``select_related`` gave them, on PostgreSQL and SQLite alike.  Nothing is
cached: each call reads the rows as they are now.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.expressions import Col

from dashboard.models import EnforcementPolicy, Image, ImageVersion, OwnershipRule, Team

M = TypeVar("M", bound=Model)

_Converters = tuple[tuple[int, tuple[Callable[..., Any], ...], Col], ...]


@dataclasses.dataclass(frozen=True)
class _Select:
    columns: str
    converters: _Converters
    widths: tuple[int, ...]


_selects: weakref.WeakKeyDictionary[BaseDatabaseWrapper, dict[str, _Select]] = weakref.WeakKeyDictionary()


def _select(
    conn: BaseDatabaseWrapper, name: str, parts: Sequence[tuple[type[Model], str]], extra: Sequence[tuple[Any, str]] = ()
) -> _Select:
    """The column list of ``parts`` (model, table alias) then ``extra`` (field, alias), with their converters."""
    known = _selects.setdefault(conn, {})
    found = known.get(name)
    if found is None:
        qn = conn.ops.quote_name
        texts, cols, widths = [], [], []
        for model, alias in parts:
            fields = model._meta.concrete_fields
            texts += [f"{alias}.{qn(str(field.column))}" for field in fields]
            cols += [field.get_col(model._meta.db_table) for field in fields]
            widths.append(len(fields))
        for field, alias in extra:
            texts.append(f"{alias}.{qn(str(field.column))}")
            cols.append(field.get_col(field.model._meta.db_table))
        converters = []
        for position, col in enumerate(cols):
            needed = (*conn.ops.get_db_converters(col), *col.get_db_converters(conn))
            if needed:
                converters.append((position, needed, col))
        found = known[name] = _Select(columns=", ".join(texts), converters=tuple(converters), widths=tuple(widths))
    return found


def _converted(conn: BaseDatabaseWrapper, select: _Select, row: Sequence[Any]) -> list[Any]:
    values = list(row)
    for position, converters, col in select.converters:
        for converter in converters:
            values[position] = converter(values[position], col, conn)
    return values


def _instance(model: type[Model], conn: BaseDatabaseWrapper, values: Sequence[Any]) -> Any:
    return model.from_db(conn.alias, [field.attname for field in model._meta.concrete_fields], values)


def _marks(values: Collection[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def images_with_versions(
    *, registries: Collection[str], repositories: Collection[str], tags: Collection[str], digests: Collection[str]
) -> list[tuple[Image, str | None, str | None]]:
    """Images in ``registries`` x ``repositories``, each with every version of it tagged one of ``tags`` or with one
    of ``digests`` (a row per version; ``(image, None, None)`` when none matches), in one statement."""
    if not registries or not repositories:
        return []
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    tag, digest = ImageVersion._meta.get_field("tag"), ImageVersion._meta.get_field("digest")
    select = _select(conn, "images_with_versions", [(Image, "i")], [(tag, "v"), (digest, "v")])
    versions: list[str] = []
    params: list[Any] = []
    if tags:
        versions.append(f"v.{qn('tag')} IN ({_marks(tags)})")
        params += sorted(tags)
    if digests:
        versions.append(f"v.{qn('digest')} IN ({_marks(digests)})")
        params += sorted(digests)
    params += [*sorted(registries), *sorted(repositories)]
    sql = (
        f"SELECT {select.columns} FROM {qn(Image._meta.db_table)} i LEFT JOIN {qn(ImageVersion._meta.db_table)} v"  # noqa: S608
        f" ON v.{qn('image_id')} = i.{qn('id')} AND ({' OR '.join(versions) or '1 = 0'})"
        f" WHERE i.{qn('registry')} IN ({_marks(registries)}) AND i.{qn('repository')} IN ({_marks(repositories)})"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    images: dict[int, Image] = {}
    out = []
    for row in rows:
        values = _converted(conn, select, row)
        width = select.widths[0]
        image = images.get(values[0])
        if image is None:
            image = images[values[0]] = _instance(Image, conn, values[:width])
        out.append((image, values[width], values[width + 1]))
    return out


def policies_with_teams(*, team_id: int | None) -> list[EnforcementPolicy]:
    """The organisation default policy and, with ``team_id``, that team's, each with its team loaded (one statement)."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    select = _select(conn, "policies_with_teams", [(EnforcementPolicy, "p"), (Team, "t")])
    where = f"p.{qn('team_id')} IS NULL" + (f" OR p.{qn('team_id')} = %s" if team_id is not None else "")
    sql = (
        f"SELECT {select.columns} FROM {qn(EnforcementPolicy._meta.db_table)} p"  # noqa: S608
        f" LEFT JOIN {qn(Team._meta.db_table)} t ON t.{qn('id')} = p.{qn('team_id')} WHERE {where}"
    )
    return _with_teams(conn, select, sql, [team_id] if team_id is not None else [], EnforcementPolicy)


def namespace_rules() -> list[OwnershipRule]:
    """The namespace ownership rules, each with its team loaded (one statement; ``RuleSet`` sorts them)."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    select = _select(conn, "namespace_rules", [(OwnershipRule, "r"), (Team, "t")])
    sql = (
        f"SELECT {select.columns} FROM {qn(OwnershipRule._meta.db_table)} r"  # noqa: S608
        f" INNER JOIN {qn(Team._meta.db_table)} t ON t.{qn('id')} = r.{qn('team_id')} WHERE r.{qn('kind')} = %s"
    )
    return _with_teams(conn, select, sql, [OwnershipRule.Kind.NAMESPACE.value], OwnershipRule)


def _with_teams(conn: BaseDatabaseWrapper, select: _Select, sql: str, params: list[Any], model: type[M]) -> list[M]:
    """Run ``sql`` (the model's columns, then its team's) and build each row's instance with its team loaded."""
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = []
    width = select.widths[0]
    for row in rows:
        values = _converted(conn, select, row)
        instance = _instance(model, conn, values[:width])
        instance._state.fields_cache["team"] = _instance(Team, conn, values[width:]) if instance.team_id is not None else None
        out.append(instance)
    return out
