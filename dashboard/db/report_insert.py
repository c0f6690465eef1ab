"""Storing a report: its row and its raw payload in one statement, with the duplicate check inside it.

This is the hot path of one Falco alert per request.  The ORM would take a transaction (BEGIN, two INSERTs,
COMMIT: four round trips) and compile both INSERTs on every call, which cost more CPU than running them; one
statement of data-modifying WITHs, written out from the models' fields once per process, does the duplicate
check, the report and the payload in one round trip.  The duplicate lookup is written out too, so the planner
starts from the content-hash index (left to itself it walked a team's reports of the whole window).  The
embedded SQLite default goes through the ORM, with the same results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Field

from dashboard.models import Report, ReportPayload, ReportStatus, Team


@dataclasses.dataclass(frozen=True)
class SameBytes:
    """An earlier report of the same bytes for the same team, format, image and stream, received within
    VIGIL_DEDUPLICATE_SECONDS and not failed: a sender's retry (falcosidekick retries without keys)."""

    team_id: Any  # None: reports without a team
    digest: str
    format_name: str
    image: str
    stream: str
    cluster: str
    since: dt.datetime

    @classmethod
    def of(cls, *, team: Team | None, digest: str, format_name: str, image: str, stream: str, cluster: str, now: dt.datetime) -> SameBytes:
        since = now - dt.timedelta(seconds=settings.VIGIL_DEDUPLICATE_SECONDS)
        return cls(team.pk if team else None, digest, format_name, image, stream, cluster, since)

    def earliest_id(self) -> Any:
        """The id of the earliest such report, or None."""
        if connection.vendor != "postgresql":
            candidates = Report.objects.filter(
                team_id=self.team_id,
                content_sha256=self.digest,
                declared_format=self.format_name,
                image_ref=self.image,
                cluster=self.cluster,
                received_at__gte=self.since,
            ).exclude(status=ReportStatus.FAILED)
            if self.stream:  # the stored stream is the one used, which defaults to the format's
                candidates = candidates.filter(stream=self.stream)
            return candidates.order_by("received_at").values_list("pk", flat=True).first()
        sql, params = self.sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def sql(self) -> tuple[str, list[Any]]:
        """The same query for PostgreSQL, written out: the reports with these bytes first (the content hash
        index finds the few there are), then the rest of the conditions on those.  Left to itself, the
        planner may walk the team's reports of the whole window instead (it did: 1 ms and more per alert)."""
        conditions = ['"team_id" IS NULL' if self.team_id is None else '"team_id" = %s']
        params: list[Any] = [self.digest] + ([] if self.team_id is None else [self.team_id])
        conditions += ['"declared_format" = %s', '"image_ref" = %s', '"cluster" = %s', '"received_at" >= %s', 'NOT ("status" = %s)']
        params += [self.format_name, self.image, self.cluster, self.since, ReportStatus.FAILED.value]
        if self.stream:  # the stored stream is the one used, which defaults to the format's
            conditions.append('"stream" = %s')
            params.append(self.stream)
        same = (
            'SELECT "id", "team_id", "declared_format", "image_ref", "cluster", "received_at", "status", "stream" FROM "dashboard_report"'
            ' WHERE "content_sha256" = %s'
        )
        where = " AND ".join(conditions)
        return f'WITH same AS MATERIALIZED ({same}) SELECT "id" FROM same WHERE {where} ORDER BY "received_at" ASC LIMIT 1', params  # noqa: S608


def insert_report(report: Report, data: bytes, *, same_bytes: SameBytes | None = None) -> Any:
    """INSERT the report and its payload, both or neither; returns None, or the id of the earlier report
    ``same_bytes`` found (then nothing is inserted).

    On PostgreSQL one statement does it all (data-modifying WITHs): the duplicate check, the report, the payload.
    Outside a transaction it commits on its own, without the BEGIN and COMMIT round trips: this is the hot path of
    one Falco alert per request.  In a caller's transaction it runs in a savepoint, so a duplicate Idempotency-Key
    leaves that usable.  The statement is written out from the model's fields once per process: compiling it with
    the ORM cost more CPU than running it.
    """
    packed, encoding = ReportPayload.pack(data)
    conn = connections[DEFAULT_DB_ALIAS]  # this thread's connection: ``connection`` looks it up on every use
    if conn.vendor != "postgresql":
        if same_bytes is not None:
            earlier_id = same_bytes.earliest_id()
            if earlier_id is not None:
                return earlier_id
        with transaction.atomic():
            report.save(force_insert=True)
            ReportPayload.objects.create(report=report, data=packed, encoding=encoding)
        return None
    fields, columns, data_field = _report_columns()
    values = [field.get_db_prep_save(field.pre_save(report, True), conn) for field in fields]
    payload = [data_field.get_db_prep_save(packed, conn), encoding]
    placeholders = ", ".join(["%s"] * len(fields))
    # Table and column names come from the models; every value is a parameter.
    store_payload = 'INSERT INTO "dashboard_reportpayload" ("report_id", "data", "encoding") SELECT "id", %s, %s FROM stored'
    if same_bytes is None:
        sql = f'WITH stored AS (INSERT INTO "dashboard_report" ({columns}) VALUES ({placeholders}) RETURNING "id") {store_payload}'  # noqa: S608
        params = [*values, *payload]
    else:
        earlier_sql, earlier_params = same_bytes.sql()
        sql = (
            f"WITH earlier AS ({earlier_sql}), "  # noqa: S608
            f'stored AS (INSERT INTO "dashboard_report" ({columns}) SELECT {placeholders} WHERE NOT EXISTS (SELECT 1 FROM earlier)'
            ' RETURNING "id"), '
            f"payload AS ({store_payload}) "
            'SELECT "id" FROM earlier'
        )
        params = [*earlier_params, *values, *payload]
    with transaction.atomic() if conn.in_atomic_block else contextlib.nullcontext(), conn.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone() if same_bytes is not None else None
    if row is not None:
        return row[0]
    report._state.adding = False
    report._state.db = conn.alias
    return None


@functools.cache
def _report_columns() -> tuple[tuple[Field[Any, Any], ...], str, Field[Any, Any]]:
    """The report's fields, their quoted column names, and the payload's data field (looked up once)."""
    fields = tuple(Report._meta.concrete_fields)
    return fields, ", ".join(f'"{field.column}"' for field in fields), ReportPayload._meta.get_field("data")  # type: ignore[return-value]
