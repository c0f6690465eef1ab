"""CSV downloads of a page's table, safe to open in a spreadsheet (formulas are neutralised)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from dashboard.selectors.queue import csv_lines, csv_safe


def csv_download(rows: Iterable[list[Any]], *, name: str) -> StreamingHttpResponse:
    """``rows`` (the header first) as ``vigil-<name>-<local time>.csv``."""
    response = StreamingHttpResponse(csv_lines(iter([[csv_safe(v) for v in row] for row in rows])), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="vigil-{name}-{stamp}.csv"'
    return response
