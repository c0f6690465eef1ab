"""SQL that is not the ORM lives in dashboard/db/ only: no raw cursor, no SQL string anywhere else in dashboard/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
ALLOWED = ("db", "migrations")
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|TRUNCATE|LOCK|ALTER|COPY)\s")
RAW_CALLS = {"cursor", "execute", "executemany", "raw", "extra", "copy_expert"}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and ast.get_docstring(node) is not None:
            out.add(id(node.body[0].value))  # type: ignore[attr-defined]
    return out


def raw_sql_in(source: str) -> list[str]:
    """What in ``source`` reaches the database around the ORM: raw cursor calls, RawSQL, SQL text."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RAW_CALLS:
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) == "RawSQL":
            found.append(f"line {node.lineno}: RawSQL")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and SQL.match(node.value):
            found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
    return found


def test_no_module_outside_dashboard_db_writes_sql() -> None:
    offenders = {
        str(path.relative_to(DASHBOARD)): raw_sql_in(path.read_text())
        for path in sorted(DASHBOARD.rglob("*.py"))
        if path.relative_to(DASHBOARD).parts[0] not in ALLOWED
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_check_sees_a_cursor_a_sql_string_and_rawsql() -> None:
    source = 'from django.db import connection\nwith connection.cursor() as c:\n    c.execute(f"SELECT {1}")\nRawSQL("x", [])\n'
    assert raw_sql_in(source) == ["line 2: .cursor(...)", "line 3: .execute(...)", "line 4: RawSQL", "line 3: SQL text 'SELECT '"]
