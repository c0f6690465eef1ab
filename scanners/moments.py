"""A tool's own timestamps, read the same way by every parser: aware UTC datetimes or None, never an error."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

_ISO_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
#: Timestamps before this are placeholders (Go's zero time 0001-01-01), not moments.
_EARLIEST = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)


def parse_moment(value: Any) -> dt.datetime | None:
    """A tool's own timestamp as an aware UTC datetime, or None.

    Takes ISO 8601 with a zone (``Z`` or an offset; fractions of any length, as Go writes nanoseconds), Unix seconds
    (docker-bench) and a protobuf ``{"seconds", "nanos"}`` (policy report results).  Anything absent, malformed,
    without a time zone or a placeholder (Go's zero time) is None: a bad timestamp never fails a report."""
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _from_epoch(value)
    elif isinstance(value, dict):
        seconds = value.get("seconds")
        moment = _from_epoch(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None
    elif isinstance(value, str):
        moment = _from_iso(value.strip())
    if moment is None or moment < _EARLIEST:
        return None
    return moment.astimezone(dt.UTC)


def _from_epoch(seconds: float) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _from_iso(text: str) -> dt.datetime | None:
    match = _ISO_RE.match(text)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]}"
    zone = "+00:00" if zone.upper() == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    try:
        return dt.datetime.fromisoformat(f"{day}T{clock}{micro}{zone}")
    except ValueError:
        return None


def latest_moment(values: Iterable[Any]) -> dt.datetime | None:
    """The latest of several timestamps (those that parse), or None."""
    moments = [moment for moment in (parse_moment(value) for value in values) if moment is not None]
    return max(moments) if moments else None
