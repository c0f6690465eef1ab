"""The findings an enforcement decision reads: one statement written out as text, not a queryset.

Every admission request and CI gate call reads an image's candidate findings with the latest expiry of their
approved risk acceptances, filtered to those that could violate the deciding policy, with what the training
classifier reads of them (so the modules that teach the reasons need no second read).  As a queryset (an OR of the
policy's rules per image, ``Max`` over the acceptances with a filter, ``GROUP BY`` every column) Django spent more
CPU compiling it than PostgreSQL spent running it: about a third of a passing decision.  Written out here it costs
string joins; the acceptance expiry is a correlated subquery on the through table's finding index instead of a
join and a ``GROUP BY``.  Nothing is cached: each call reads the findings, their statuses and acceptances as they
are now.  Columns come back through the fields' converters (as the ORM's ``.values()`` gives them), so the
statement also runs on SQLite.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Col

from dashboard.models import Finding, RiskAcceptance

#: The columns read, as ``.values()`` names them; ``accepted_until`` follows them.
COLUMNS = (
    "id",
    "rule_id",
    "kind",
    "severity",
    "status",
    "title",
    "package_name",
    "package_version",
    "fixed_version",
    "kev",
    "epss",
    "due_date",
    "image_id",
)
#: What the training classifier reads besides (selectors/finding_classes.FACT_FIELDS), so that the modules that
#: teach a decision's reasons need no second read; ``details`` only by the two keys it reads (details can be large).
CLASS_COLUMNS = ("source", "cwe", "package_type", "resource_kind")
DETAILS_KEYS = ("class", "purl")


@dataclasses.dataclass(frozen=True)
class Wanted:
    """One image's findings that could violate its policy (a superset of those that do), or all of them."""

    image_id: int
    every: bool = False
    #: Severities that violate the severity rule (empty: the rule is off).
    severities: tuple[str, ...] = ()
    fix_required: bool = True
    epss_min: float | None = None
    kev: bool = False
    #: Due dates before this one violate the SLA rule (None: the rule is off).
    overdue_before: dt.date | None = None
    secrets: bool = False


@dataclasses.dataclass(frozen=True)
class _Shape:
    select: str
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Col], ...]


_shapes: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _Shape] = weakref.WeakKeyDictionary()


def _shape_for(conn: BaseDatabaseWrapper) -> _Shape:
    found = _shapes.get(conn)
    if found is None:
        qn = conn.ops.quote_name
        table = Finding._meta.db_table
        through = RiskAcceptance.findings.through._meta
        acceptance = RiskAcceptance._meta.db_table
        names = (*COLUMNS, *CLASS_COLUMNS)
        fields = [Finding._meta.get_field(name.removesuffix("_id") if name == "image_id" else name) for name in names]
        expires = RiskAcceptance._meta.get_field("expires")
        columns = ", ".join(f"f.{qn(str(field.column))}" for field in fields)  # type: ignore[union-attr]
        details = ", ".join(_details_key(conn, key) for key in DETAILS_KEYS)
        select = (
            f"SELECT {columns}, {details}, (SELECT MAX(a.{qn('expires')}) FROM {qn(through.db_table)} m"  # noqa: S608 - names from the models
            f" INNER JOIN {qn(acceptance)} a ON a.{qn('id')} = m.{qn('riskacceptance_id')}"
            f" WHERE m.{qn('finding_id')} = f.{qn('id')} AND a.{qn('state')} = %s) FROM {qn(table)} f"
        )
        cols = [field.get_col(table) for field in fields]  # type: ignore[union-attr]
        converters = []
        for position, col in [*enumerate(cols), (len(cols) + len(DETAILS_KEYS), expires.get_col(acceptance))]:
            needed = (*conn.ops.get_db_converters(col), *col.get_db_converters(conn))
            if needed:
                converters.append((position, needed, col))
        found = _shapes[conn] = _Shape(select=select, converters=tuple(converters))
    return found


def _details_key(conn: BaseDatabaseWrapper, key: str) -> str:
    """One key of ``details`` as text (PostgreSQL's ``->>``, SQLite's ``json_extract``)."""
    column = f"f.{conn.ops.quote_name('details')}"
    return f"{column} ->> '{key}'" if conn.vendor == "postgresql" else f"json_extract({column}, '$.{key}')"


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _image_clause(wanted: Wanted, params: list[Any]) -> str:
    params.append(wanted.image_id)
    if wanted.every:
        return "(f.image_id = %s)"
    fix_ok = " AND f.fixed_version <> ''" if wanted.fix_required else ""
    parts = []
    if wanted.severities:
        parts.append(f"(f.severity IN ({_placeholders(wanted.severities)}){fix_ok})")
        params.extend(wanted.severities)
    if wanted.epss_min is not None:
        parts.append(f"(f.epss >= %s{fix_ok})")
        params.append(wanted.epss_min)
    if wanted.kev:
        parts.append("f.kev")
    if wanted.overdue_before is not None:
        parts.append("f.due_date < %s")
        params.append(wanted.overdue_before)
    if wanted.secrets:
        parts.append("f.kind = 'secret'")
    return f"(f.image_id = %s AND ({' OR '.join(parts) or '1 = 0'}))"


def decision_findings(*, wanted: Sequence[Wanted], statuses: Sequence[str], team_ids: Sequence[int] | None) -> list[dict[str, Any]]:
    """The findings ``wanted`` names in ``statuses`` (of ``team_ids`` only, unless None), as ``.values()`` rows of
    ``COLUMNS`` and ``CLASS_COLUMNS``, ``details_class`` and ``details_purl``, and ``accepted_until``: the latest expiry
    of an approved risk acceptance of each (None: none)."""
    if not wanted or not statuses or (team_ids is not None and not team_ids):
        return []
    conn = connections[DEFAULT_DB_ALIAS]
    shape = _shape_for(conn)
    params: list[Any] = [RiskAcceptance.State.APPROVED.value, *statuses]
    where = f"f.status IN ({_placeholders(statuses)})"
    if team_ids is not None:
        where += f" AND f.team_id IN ({_placeholders(team_ids)})"
        params.extend(team_ids)
    where += f" AND ({' OR '.join(_image_clause(item, params) for item in wanted)})"
    with conn.cursor() as cursor:
        cursor.execute(f"{shape.select} WHERE {where}", params)
        rows = cursor.fetchall()
    names = (*COLUMNS, *CLASS_COLUMNS, *(f"details_{key}" for key in DETAILS_KEYS), "accepted_until")
    out = []
    for row in rows:
        values = list(row)
        for position, converters, col in shape.converters:
            for converter in converters:
                values[position] = converter(values[position], col, conn)
        out.append(dict(zip(names, values, strict=True)))
    return out
