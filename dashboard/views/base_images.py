"""The base-image roll-up page and its CSV: what moving each shared base image fixes, routed to each owning team."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.models import SEVERITY_ORDER
from dashboard.selectors import base_images as base_image_selectors
from dashboard.views.csv_downloads import csv_download

CSV_COLUMNS = ["base", "os", "move_to", "layers", "team", "images", "findings", "fixable"]


@login_required
@require_GET
def base_image_list(request: HttpRequest) -> HttpResponse:
    groups = base_image_selectors.base_image_groups(user=request.user)
    context = {"groups": groups, "severities": SEVERITY_ORDER, "counted_at": base_image_selectors.counted_at()}
    return render(request, "dashboard/base_images.html", context)


@login_required
@require_GET
def base_image_export(request: HttpRequest) -> StreamingHttpResponse:
    rows = base_image_selectors.groups_as_rows(base_image_selectors.base_image_groups(user=request.user))
    return csv_download([CSV_COLUMNS, *([row[column] for column in CSV_COLUMNS] for row in rows)], name="base-images")
