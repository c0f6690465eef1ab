"""One way to show a moment on every page: ``2026-12-02 16:47 UTC``, in the site's time zone, with the zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

FORMAT = "%Y-%m-%d %H:%M %Z"


def moment_text(value: dt.datetime) -> str:
    """The text every page shows for ``value`` (aware; shown in the current time zone)."""
    return timezone.localtime(value).strftime(FORMAT)


@register.filter
def moment(value: Any) -> SafeString | str:
    """A ``<time>`` element with the moment in one format, the exact instant in its ``datetime`` attribute."""
    if not isinstance(value, dt.datetime):
        return "—" if value in (None, "") else str(value)
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), moment_text(value))
