"""Shapes shared by formats that carry Kubernetes objects: ``kind: List`` wrappers, paths, timestamps."""

from __future__ import annotations

import datetime
from typing import Any

from scanners.base import ParseError, expect_list


def is_list(value: Any) -> bool:
    """A Kubernetes ``kind: List`` wrapper (what ``kubectl get ... -o json`` prints)."""
    return isinstance(value, dict) and value.get("kind") == "List" and "items" in value


def objects_in(document: Any) -> list[tuple[str, Any]]:
    """(path, object) for every object in a document: one object, a List, or a list of either."""
    if isinstance(document, list):
        out: list[tuple[str, Any]] = []
        for index, item in enumerate(document):
            if is_list(item):
                items = expect_list(item.get("items"), f"[{index}].items")
                out.extend((f"[{index}].items[{sub}]", entry) for sub, entry in enumerate(items))
            else:
                out.append((f"[{index}]", item))
        return out
    if is_list(document):
        items = expect_list(document.get("items"), "items")
        return [(f"items[{index}]", item) for index, item in enumerate(items)]
    return [("", document)]


def join_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def rfc3339_to_iso(text: str, where: str, *, what: str = "timestamp") -> str | None:
    """An RFC 3339 timestamp normalised to ISO 8601 in UTC, or None when empty."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParseError(f"{where}: {what} {text[:40]!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat()
