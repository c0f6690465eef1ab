"""The triage queue: keyset pagination that stays fast at a million findings, a capped count, CSV export.

Pages are addressed by a cursor (the sort key of the last row shown), never by an
OFFSET, so page 2,000 costs what page 1 costs; the count stops at COUNT_CAP.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from dashboard.models import ACTIVE_STATUSES, SEVERITY_ORDER, Finding
from dashboard.selectors.findings import DUE_SOON_DAYS, FindingFilters, finding_list

PAGE_SIZE = 50
#: The queue counts up to this many findings, then says "10000+".
COUNT_CAP = 10000
#: With free text, matching a row costs more (three case-insensitive LIKEs): count up to this many.
SEARCH_COUNT_CAP = 1000
#: Cells starting with these are formulas to a spreadsheet: they are prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_RANK = {name: len(SEVERITY_ORDER) - index for index, name in enumerate(SEVERITY_ORDER)}


@dataclasses.dataclass
class QueuePage:
    findings: list[Finding]
    count: int
    count_capped: bool
    cursor: str
    next_cursor: str

    @property
    def is_first(self) -> bool:
        return not self.cursor


def encode_cursor(sort: str, finding: Finding) -> str:
    """The sort key of ``finding`` for ``sort``, as a URL-safe string."""
    if sort == "severity":
        return f"{_RANK.get(finding.severity, 0)}~{finding.risk_score!r}~{finding.pk}"
    if sort == "due":
        return f"{finding.due_date.isoformat() if finding.due_date else ''}~{finding.pk}"
    if sort in ("first_seen", "last_seen"):
        moment: dt.datetime = getattr(finding, sort)
        return f"{moment.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')}~{finding.pk}"
    return f"{finding.risk_score!r}~{finding.pk}"


def cursor_filter(sort: str, cursor: str) -> Q | None:
    """Rows after the cursor in the ``sort`` order; None when the cursor is missing or malformed."""
    if not cursor:
        return None
    parts = cursor.split("~")
    try:
        pk = int(parts[-1])
        if sort == "severity" and len(parts) == 3:
            rank, risk = int(parts[0]), float(parts[1])
            return (
                Q(severity_rank__lt=rank) | Q(severity_rank=rank, risk_score__lt=risk) | Q(severity_rank=rank, risk_score=risk, id__gt=pk)
            )
        if sort == "due" and len(parts) == 2:
            if not parts[0]:
                return Q(due_date__isnull=True, id__gt=pk)
            due = dt.date.fromisoformat(parts[0])
            return Q(due_date__gt=due) | Q(due_date=due, id__gt=pk) | Q(due_date__isnull=True)
        if sort in ("first_seen", "last_seen") and len(parts) == 2:
            moment = dt.datetime.strptime(parts[0], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC)
            return Q(**{f"{sort}__lt": moment}) | Q(**{sort: moment, "id__gt": pk})
        if sort == "risk" and len(parts) == 2:
            risk = float(parts[0])
            return Q(risk_score__lt=risk) | Q(risk_score=risk, id__gt=pk)
    except ValueError:
        return None
    return None


def capped_count(qs: QuerySet[Finding], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows match, counting at most ``cap + 1`` of them: (count, capped)."""
    count = qs.order_by().values("pk")[: cap + 1].count()
    return min(count, cap), count > cap


#: What a queue row shows: the wide columns (description, details, references) stay in the database.
ROW_FIELDS = (
    "id",
    "severity",
    "severity_rank",
    "rule_id",
    "title",
    "package_name",
    "package_version",
    "fixed_version",
    "package_path",
    "cvss",
    "resource_namespace",
    "resource_kind",
    "resource_name",
    "status",
    "due_date",
    "kev",
    "kev_due_date",
    "epss",
    "exposed",
    "risk_parts",
    "risk_score",
    "first_seen",
    "last_seen",
    "team__slug",
    "team__name",
    "image__registry",
    "image__repository",
    "assignee__username",
)


def queue_page(
    *, user: Any, filters: FindingFilters, cursor: str = "", page_size: int = PAGE_SIZE, today: dt.date | None = None
) -> QueuePage:
    """One page of the queue (three queries: the user's team ids, the rows and the capped count)."""
    qs = finding_list(user=user, filters=filters, today=today)
    after = cursor_filter(filters.sort, cursor)
    rows = list((qs.filter(after) if after is not None else qs).only(*ROW_FIELDS)[: page_size + 1])
    next_cursor = encode_cursor(filters.sort, rows[page_size - 1]) if len(rows) > page_size else ""
    count, capped = capped_count(qs, cap=SEARCH_COUNT_CAP if filters.q else COUNT_CAP)
    return QueuePage(
        findings=rows[:page_size], count=count, count_capped=capped, cursor=cursor if after is not None else "", next_cursor=next_cursor
    )


def matching_ids(*, user: Any, filters: FindingFilters, limit: int) -> list[int]:
    """Ids of everything matching the filters, at most ``limit + 1`` (so the caller can tell "too many")."""
    return list(finding_list(user=user, filters=filters).order_by("id").values_list("id", flat=True)[: limit + 1])


def visible_ids(*, user: Any, ids: list[int]) -> list[int]:
    """Of these ids, the findings the user may see (a selection posted by a browser is not trusted)."""
    return list(Finding.objects.visible_to(user).filter(pk__in=ids).order_by("id").values_list("id", flat=True))


def row_states(*, user: Any, ids: list[int]) -> dict[str, dict[str, str]]:
    """What the queue's changed rows show now (status, assignee), by id, for the page to update in place."""
    rows = Finding.objects.visible_to(user).filter(pk__in=ids[:1000]).values_list("id", "status", "assignee__username")
    return {str(pk): {"status": status, "assignee": assignee or ""} for pk, status, assignee in rows}


# --- CSV export ---------------------------------------------------------------------------------

EXPORT_COLUMNS = [
    "id",
    "status",
    "severity",
    "risk_score",
    "rule_id",
    "title",
    "kind",
    "source",
    "stream",
    "team",
    "image",
    "package",
    "installed_version",
    "fixed_version",
    "package_path",
    "resource",
    "cvss",
    "epss",
    "kev",
    "kev_due_date",
    "exposed",
    "due_date",
    "sla",
    "assignee",
    "first_seen",
    "last_seen",
]
_EXPORT_FIELDS = (
    "id",
    "status",
    "severity",
    "risk_score",
    "rule_id",
    "title",
    "kind",
    "source",
    "stream",
    "team__slug",
    "image__registry",
    "image__repository",
    "package_name",
    "package_version",
    "fixed_version",
    "package_path",
    "resource_cluster",
    "resource_namespace",
    "resource_kind",
    "resource_name",
    "cvss",
    "epss",
    "kev",
    "kev_due_date",
    "exposed",
    "due_date",
    "assignee__username",
    "first_seen",
    "last_seen",
)


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet shows as text: formulas (= + - @, tab, CR at the start) get a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _sla(status: str, due: dt.date | None, today: dt.date) -> str:
    if due is None or status not in ACTIVE_STATUSES:
        return ""
    if due < today:
        return "overdue"
    return "due soon" if due <= today + dt.timedelta(days=DUE_SOON_DAYS) else "on track"


def export_rows(*, user: Any, filters: FindingFilters) -> Iterator[list[str]]:
    """The header, then one row per matching finding in queue order, streamed in chunks."""
    today = timezone.localdate()
    yield EXPORT_COLUMNS
    qs = finding_list(user=user, filters=filters, today=today).values(*_EXPORT_FIELDS)
    for row in qs.iterator(chunk_size=2000):
        image = f"{row['image__registry']}/{row['image__repository']}" if row["image__repository"] else ""
        resource = "/".join(
            part for part in (row["resource_cluster"], row["resource_namespace"], row["resource_kind"], row["resource_name"]) if part
        )
        values = [
            row["id"],
            row["status"],
            row["severity"],
            row["risk_score"],
            row["rule_id"],
            row["title"],
            row["kind"],
            row["source"],
            row["stream"],
            row["team__slug"],
            image,
            row["package_name"],
            row["package_version"],
            row["fixed_version"],
            row["package_path"],
            resource,
            row["cvss"],
            row["epss"],
            row["kev"],
            row["kev_due_date"],
            row["exposed"],
            row["due_date"],
            _sla(row["status"], row["due_date"], today),
            row["assignee__username"],
            row["first_seen"],
            row["last_seen"],
        ]
        yield [csv_safe(value) for value in values]


class _Line:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterator[list[str]]) -> Iterator[str]:
    """CSV text, line by line, for a streamed response."""
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow(row)


def export_filename(now: dt.datetime | None = None) -> str:
    return f"vigil-findings-{timezone.localtime(now).strftime('%Y%m%d-%H%M')}.csv"
