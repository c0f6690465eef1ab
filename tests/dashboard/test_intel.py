"""KEV and EPSS imports from files in the published formats, re-scoring affected findings in bulk."""

from __future__ import annotations

import datetime as dt
import gzip
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.models import EpssScore, Finding, KevEntry
from dashboard.services import intel
from tests.factories import FindingFactory, TeamFactory

pytestmark = pytest.mark.django_db

FIRST_SEEN = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def kev_catalogue(*entries: tuple[str, str]) -> dict:
    """A catalogue in CISA's published shape (known_exploited_vulnerabilities.json)."""
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2026.11.26",
        "dateReleased": "2026-11-26T17:02:11.5236Z",
        "count": len(entries),
        "vulnerabilities": [
            {
                "cveID": cve,
                "vendorProject": "Apache",
                "product": "Log4j2",
                "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
                "dateAdded": "2026-11-10",
                "shortDescription": "Apache Log4j2 JNDI features do not protect against attacker-controlled JNDI-related endpoints.",
                "requiredAction": "Apply updates per vendor instructions.",
                "dueDate": due,
                "knownRansomwareCampaignUse": "Known",
                "notes": "https://logging.apache.org/log4j/2.x/security.html",
                "cwes": ["CWE-20", "CWE-917"],
            }
            for cve, due in entries
        ],
    }


EPSS_CSV = """#model_version:v2025.03.14,score_date:2026-11-26T12:55:00Z
cve,epss,percentile
CVE-1999-0001,0.00383,0.73512
CVE-2021-44228,0.94358,0.99950
CVE-2023-0001,0.01000,0.50000
"""


@pytest.fixture
def log4shell():
    return FindingFactory(
        rule_id="CVE-2021-44228",
        severity="critical",
        cvss=10.0,
        fixed_version="2.17.1",
        first_seen=FIRST_SEEN,
        team=TeamFactory(slug="payments"),
    )


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_import_kev_marks_findings_and_a_sooner_kev_due_date_wins(tmp_path, log4shell) -> None:
    path = write(
        tmp_path, "kev.json", json.dumps(kev_catalogue(("CVE-2021-44228", "2026-11-05"), ("CVE-2020-0001", "2026-12-01"))).encode()
    )
    out = io.StringIO()

    call_command("import_kev", path, stdout=out)

    log4shell.refresh_from_db()
    assert out.getvalue() == "imported 2 KEV entries; 1 finding re-scored\n"
    assert (log4shell.kev, log4shell.kev_due_date, log4shell.due_date) == (True, dt.date(2026, 11, 5), dt.date(2026, 11, 5))
    assert log4shell.risk_parts == {"severity": 55.0, "epss": 0.0, "kev": 15.0, "fix_available": 5.0, "exposed": 0.0}
    assert log4shell.risk_score == 75.0
    assert KevEntry.objects.get(cve="CVE-2021-44228").known_ransomware == "Known"


def test_the_sla_due_date_stays_when_it_is_sooner_than_the_kev_date(tmp_path, log4shell) -> None:
    path = write(tmp_path, "kev.json", json.dumps(kev_catalogue(("CVE-2021-44228", "2027-03-01"))).encode())

    call_command("import_kev", path, stdout=io.StringIO())

    log4shell.refresh_from_db()
    assert (log4shell.kev_due_date, log4shell.due_date) == (dt.date(2027, 3, 1), dt.date(2026, 11, 8))


def test_a_cve_removed_from_the_catalogue_is_no_longer_kev(tmp_path, log4shell) -> None:
    call_command(
        "import_kev", write(tmp_path, "a.json", json.dumps(kev_catalogue(("CVE-2021-44228", "2026-11-05"))).encode()), stdout=io.StringIO()
    )

    call_command(
        "import_kev", write(tmp_path, "b.json", json.dumps(kev_catalogue(("CVE-2020-0001", "2026-12-01"))).encode()), stdout=io.StringIO()
    )

    log4shell.refresh_from_db()
    assert (log4shell.kev, log4shell.kev_due_date, log4shell.due_date) == (False, None, dt.date(2026, 11, 8))
    assert list(KevEntry.objects.values_list("cve", flat=True)) == ["CVE-2020-0001"]


def test_import_epss_reads_firsts_csv_and_rescores(tmp_path, log4shell) -> None:
    out = io.StringIO()

    call_command("import_epss", write(tmp_path, "epss.csv", EPSS_CSV.encode()), stdout=out)

    log4shell.refresh_from_db()
    score = EpssScore.objects.get(cve="CVE-2021-44228")
    assert out.getvalue() == "imported 3 EPSS scores; 1 finding re-scored\n"
    assert (log4shell.epss, log4shell.epss_percentile) == (0.94358, 0.9995)
    assert log4shell.risk_parts["epss"] == 14.2
    assert (score.date, score.model_version) == (dt.date(2026, 11, 26), "v2025.03.14")


def test_import_epss_reads_the_gzipped_file_as_published(tmp_path, log4shell) -> None:
    call_command("import_epss", write(tmp_path, "epss.csv.gz", gzip.compress(EPSS_CSV.encode())), stdout=io.StringIO())

    assert Finding.objects.get(pk=log4shell.pk).epss == 0.94358


def test_a_broken_kev_file_is_refused_naming_the_file_and_the_problem(tmp_path) -> None:
    path = write(tmp_path, "kev.json", json.dumps({"vulnerabilities": [{"cveID": "not-a-cve"}]}).encode())

    with pytest.raises(CommandError) as error:
        call_command("import_kev", path)

    assert str(error.value) == f"{path}: vulnerabilities[0]: cveID 'not-a-cve' is not a CVE id"


def test_an_epss_file_without_the_header_is_refused(tmp_path) -> None:
    path = write(tmp_path, "epss.csv", b"#model_version:v1\nid,score\nCVE-2021-44228,0.9\n")

    with pytest.raises(CommandError) as error:
        call_command("import_epss", path)

    assert str(error.value) == f"{path}: line 2: expected the header 'cve,epss,percentile' of FIRST's EPSS CSV"


def test_an_epss_value_out_of_range_names_its_line(tmp_path) -> None:
    path = write(tmp_path, "epss.csv", b"#model_version:v1,score_date:2026-11-26\ncve,epss,percentile\nCVE-2021-44228,1.5,0.9\n")

    with pytest.raises(CommandError) as error:
        call_command("import_epss", path)

    assert str(error.value) == f"{path}: line 3: epss and percentile must be between 0 and 1"


def test_rescoring_costs_the_same_queries_for_5_or_90_findings(tmp_path) -> None:
    team = TeamFactory(slug="payments")
    few = [f.pk for f in FindingFactory.create_batch(5, rule_id="CVE-2021-44228", team=team)]
    many = [f.pk for f in FindingFactory.create_batch(90, rule_id="CVE-2023-0001", team=team)]
    call_command("import_epss", write(tmp_path, "epss.csv", EPSS_CSV.encode()), stdout=io.StringIO())
    Finding.objects.update(epss=None, risk_parts={})

    with CaptureQueriesContext(connection) as small:
        intel.findings_rescore(ids=few)
    with CaptureQueriesContext(connection) as large:
        intel.findings_rescore(ids=many)

    assert len(small.captured_queries) == len(large.captured_queries)


@pytest.fixture
def served(tmp_path) -> Iterator[str]:
    (tmp_path / "kev.json").write_text(json.dumps(kev_catalogue(("CVE-2021-44228", "2026-11-05"))))
    (tmp_path / "epss.csv.gz").write_bytes(gzip.compress(EPSS_CSV.encode()))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_optional_download_imports_both_feeds(served, log4shell) -> None:
    done = intel.intel_refresh(kev_url=f"{served}/kev.json", epss_url=f"{served}/epss.csv.gz")

    log4shell.refresh_from_db()
    assert done == {"kev": "imported 1 KEV entries; 1 finding re-scored", "epss": "imported 3 EPSS scores; 1 finding re-scored"}
    assert (log4shell.kev, log4shell.epss) == (True, 0.94358)


def test_the_download_is_off_by_default(settings) -> None:
    assert (settings.VIGIL_KEV_URL, settings.VIGIL_EPSS_URL) == ("", "")
    assert intel.intel_refresh() == {}
    assert "refresh-threat-intel" not in settings.CELERY_BEAT_SCHEDULE
