"""insert_rows stores what the ORM would store (COPY on PostgreSQL in CI, bulk_create on SQLite); payload storage."""

from __future__ import annotations

import datetime as dt
import zlib

import pytest
from django.db import connection

from dashboard.db.copy_rows import insert_rows
from dashboard.models import Finding, FindingOccurrence, ReportPayload
from tests.factories import FindingFactory, FindingOccurrenceFactory, ImageFactory, ReportFactory, ReportPayloadFactory, TeamFactory

pytestmark = pytest.mark.django_db

SEEN = dt.datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=dt.UTC)
AWKWARD = 'tab\there, newline\nthere, CR\r, back\\slash \\N "quoted" it\'s ; DROP TABLE x; =HYPERLINK("x") <script>ü€😀'


def _row(fingerprint: str, **values: object) -> dict[str, object]:
    return {
        "fingerprint": fingerprint,
        "kind": "vulnerability",
        "source": "trivy",
        "scope_key": "scan|trivy|image:x",
        "rule_id": "CVE-2026-0001",
        "severity": "high",
        "first_seen": SEEN,
        "last_seen": SEEN,
        "status_changed_at": SEEN,
        **values,
    }


def test_every_kind_of_value_comes_back_as_it_went_in() -> None:
    team, image, report = TeamFactory(), ImageFactory(), ReportFactory()
    details = {"text": AWKWARD, "list": [1, 2.5, None, True], "nested": {"back\\slash": "\\u0041"}}
    row = _row(
        "fp-1",
        team_id=team.pk,
        image_id=image.pk,
        last_report_id=report.pk,
        title=AWKWARD,
        description="",
        cvss=9.8,
        kev=True,
        cwe=["CWE-79"],
        details=details,
        due_date=dt.date(2026, 12, 4),
        fixed_at=None,
        occurrences=7,
    )

    returned = insert_rows(Finding, [row], unique_fields=["fingerprint"], returning=["id", "fingerprint"])

    finding = Finding.objects.get(fingerprint="fp-1")
    assert returned == [(finding.pk, "fp-1")]
    assert finding.title == AWKWARD
    assert finding.description == ""
    assert (finding.team_id, finding.image_id, finding.last_report_id) == (team.pk, image.pk, report.pk)
    assert (finding.cvss, finding.kev, finding.cwe, finding.details) == (9.8, True, ["CWE-79"], details)
    assert (finding.due_date, finding.fixed_at, finding.occurrences, finding.first_seen) == (dt.date(2026, 12, 4), None, 7, SEEN)


def test_columns_left_out_take_the_model_defaults() -> None:
    insert_rows(Finding, [_row("fp-defaults")])

    finding = Finding.objects.get(fingerprint="fp-defaults")
    assert (finding.status, finding.title, finding.references, finding.details) == ("open", "", [], {})
    assert (finding.kev, finding.occurrences, finding.risk_score, finding.team_id, finding.cvss) == (False, 1, 0, None, None)
    assert finding.severity_rank == 5  # "high"; the generated column is computed by the database, never written


def test_a_conflicting_row_is_skipped_and_not_returned() -> None:
    existing = FindingFactory(fingerprint="fp-taken", title="kept")

    returned = insert_rows(
        Finding, [_row("fp-taken", title="lost"), _row("fp-new")], unique_fields=["fingerprint"], returning=["fingerprint"]
    )

    existing.refresh_from_db()
    assert returned == [("fp-new",)]
    assert existing.title == "kept"
    assert Finding.objects.count() == 2


def test_update_fields_update_the_conflicting_row_only_in_those_fields() -> None:
    finding = FindingFactory()
    earlier = SEEN - dt.timedelta(days=3)
    FindingOccurrenceFactory(finding=finding, tag="1.0", digest="", workload="", first_seen=earlier, last_seen=earlier)
    rows = [
        {"finding_id": finding.pk, "tag": "1.0", "digest": "", "workload": "", "first_seen": SEEN, "last_seen": SEEN},
        {"finding_id": finding.pk, "tag": "1.1", "digest": "", "workload": "", "first_seen": SEEN, "last_seen": SEEN},
    ]

    insert_rows(FindingOccurrence, rows, unique_fields=["finding", "tag", "digest", "workload"], update_fields=["last_seen"])

    seen = {o.tag: (o.first_seen, o.last_seen) for o in FindingOccurrence.objects.filter(finding=finding)}
    assert seen == {"1.0": (earlier, SEEN), "1.1": (SEEN, SEEN)}


def test_many_rows_in_several_rounds() -> None:
    rows = [_row(f"fp-{number:05d}", occurrences=number + 1) for number in range(2500)]

    returned = insert_rows(Finding, rows, unique_fields=["fingerprint"], returning=["fingerprint", "occurrences"], batch_size=1000)

    assert sorted(returned) == [(f"fp-{number:05d}", number + 1) for number in range(2500)]
    assert Finding.objects.count() == 2500


def test_raw_payloads_are_stored_with_lz4_on_postgresql(require_postgres) -> None:
    report = ReportFactory()
    ReportPayloadFactory(report=report, data=b'{"padding": "' + b"x" * 100_000 + b'"}')

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(data) FROM dashboard_reportpayload WHERE report_id = %s", [report.pk])
        assert cursor.fetchone() == ("lz4",)


def test_payloads_are_packed_with_lz4_and_those_stored_before_stay_readable() -> None:
    raw = b'{"Results": [' + b'{"VulnerabilityID": "CVE-2026-0001"},' * 2000 + b"{}]}"
    packed, encoding = ReportPayload.pack(raw)
    stored = [
        ReportPayloadFactory(data=packed, encoding=encoding),
        ReportPayloadFactory(data=zlib.compress(raw), encoding="zlib"),  # before lz4
        ReportPayloadFactory(data=raw, encoding=""),  # before compression
    ]

    assert (encoding, len(packed) * 20 < len(raw)) == ("lz4", True)
    assert [ReportPayload.objects.get(pk=payload.pk).raw for payload in stored] == [raw, raw, raw]
