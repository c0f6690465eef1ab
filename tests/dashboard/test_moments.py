"""Every page shows a moment one way, with its time zone (dashboard/templatetags/moments.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from django.test import override_settings
from django.utils import timezone

from dashboard.templatetags.moments import moment

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_a_moment_is_shown_in_the_sites_time_zone_with_the_zone_and_the_exact_instant() -> None:
    instant = dt.datetime(2026, 11, 30, 14, 5, 9, tzinfo=dt.UTC)

    with override_settings(TIME_ZONE="Europe/Berlin"), timezone.override("Europe/Berlin"):
        shown = str(moment(instant))

    assert shown == '<time datetime="2026-11-30T14:05:09+00:00">2026-11-30 15:05 CET</time>'


def test_no_template_formats_a_time_of_day_itself() -> None:
    own = {
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if re.search(r'\|date:"[^"]*[HGgis]', path.read_text())  # hours, minutes or seconds: use |moment
    }

    assert own == set()
