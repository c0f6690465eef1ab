"""Concurrent imports into one scope are serialised: 5 parallel imports of overlapping reports of the
same image give the same final state as running them one after another (in the order they were
applied), with no exception and no 5xx.

DefectDojo threw foreign-key 500s here (its issue #8882).  The five reports overlap (report k holds
findings 15k .. 15k+59), so the order matters: the comparison replays them serially in the order the
parallel run applied them, on an empty database, and compares every report's counts and held closures,
every finding's (fingerprint, status) and the events per type.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from bench.reportgen import trivy_bytes
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.models import ApiToken, ReportStatus
from tests.integration.conftest import DrillStack
from tests.integration.drills import (
    Upload,
    applied_order,
    clean_run,
    database_state,
    finished,
    post_report,
    report_rows,
    wait_for,
    wipe_ingested,
)

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("drills")]

OVERLAPPING = [Upload(data=trivy_bytes(60, start=15 * k, image="registry.example.com/drills/shared", tag=f"1.{k}")) for k in range(5)]


@pytest.mark.usefixtures("postgres_url")
def test_five_parallel_imports_in_threads_equal_running_them_one_after_another(drill_token: tuple[ApiToken, str]) -> None:
    token = drill_token[0]
    barrier = threading.Barrier(len(OVERLAPPING))

    def import_one(upload: Upload) -> str:
        try:
            barrier.wait(timeout=60)
            report, _ = report_submit(data=upload.data, token=token, enqueue_now=False)
            report_process(report.pk)
            return str(report.pk)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(OVERLAPPING)) as pool:
        ids = list(pool.map(import_one, OVERLAPPING, timeout=240))  # re-raises what an import raised
    order = applied_order(ids)
    rows = report_rows(ids)
    parallel = database_state()
    wipe_ingested()
    serial = clean_run([OVERLAPPING[ids.index(pk)] for pk in order], token=token)

    assert [(rows[pk]["status"], rows[pk]["error"], rows[pk]["attempts"]) for pk in order] == [(ReportStatus.DONE, "", 1)] * 5
    assert [rows[pk]["outcome"] for pk in order] == list(serial.outcomes)
    assert parallel == serial.state


def test_five_concurrent_posts_through_gunicorn_and_a_real_worker(drill_stack: DrillStack, drill_token: tuple[ApiToken, str]) -> None:
    api, _ = drill_stack.up(concurrency=5)

    with ThreadPoolExecutor(max_workers=len(OVERLAPPING)) as pool:
        posted = list(pool.map(lambda upload: post_report(api.base_url, drill_stack.token, upload), OVERLAPPING))
    ids = [p.report_id for p in posted]
    wait_for(lambda: finished(ids), timeout=240, what="the five reports to finish", interval=0.25)
    order = applied_order(ids)
    rows = report_rows(ids)
    parallel = database_state()
    wipe_ingested()
    serial = clean_run([OVERLAPPING[ids.index(pk)] for pk in order], token=drill_token[0])

    assert [p.status for p in posted] == [202] * 5
    assert [(rows[pk]["status"], rows[pk]["error"], rows[pk]["attempts"]) for pk in order] == [(ReportStatus.DONE, "", 1)] * 5
    assert [rows[pk]["outcome"] for pk in order] == list(serial.outcomes)
    assert parallel == serial.state
