"""Finding events are built and written in one module only (dashboard/services/finding_events.py): no
``FindingEvent(...)``, no ``FindingEvent.objects.create/bulk_create``, no ``insert_rows(FindingEvent, ...)`` anywhere
else in dashboard/."""

from __future__ import annotations

import ast
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
WRITER = Path("services") / "finding_events.py"
WRITES = {"create", "bulk_create", "get_or_create", "update_or_create"}


def _is_model(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "FindingEvent") or (isinstance(node, ast.Attribute) and node.attr == "FindingEvent")


def event_writes_in(source: str) -> list[str]:
    """Where ``source`` builds or writes a finding event itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if _is_model(func):
            found.append(f"line {node.lineno}: FindingEvent(...)")
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in WRITES
            and isinstance(func.value, ast.Attribute)
            and _is_model(func.value.value)
        ):
            found.append(f"line {node.lineno}: FindingEvent.{func.value.attr}.{func.attr}(...)")
        elif isinstance(func, ast.Name) and func.id == "insert_rows" and node.args and _is_model(node.args[0]):
            found.append(f"line {node.lineno}: insert_rows(FindingEvent, ...)")
    return found


def test_no_module_but_the_writer_builds_or_writes_finding_events() -> None:
    offenders = {
        str(path.relative_to(DASHBOARD)): event_writes_in(path.read_text())
        for path in sorted(DASHBOARD.rglob("*.py"))
        if path.relative_to(DASHBOARD) != WRITER and path.relative_to(DASHBOARD).parts[0] != "migrations"
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_check_sees_a_constructor_a_manager_write_and_a_copy() -> None:
    source = (
        "FindingEvent(finding_id=1)\n"
        "models.FindingEvent.objects.bulk_create([])\n"
        "FindingEvent.objects.create(type='x')\n"
        "insert_rows(FindingEvent, rows)\n"
        "FindingEvent.objects.filter(type='x')\n"
    )
    assert event_writes_in(source) == [
        "line 1: FindingEvent(...)",
        "line 2: FindingEvent.objects.bulk_create(...)",
        "line 3: FindingEvent.objects.create(...)",
        "line 4: insert_rows(FindingEvent, ...)",
    ]
