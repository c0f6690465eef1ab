"""Fault drills: break the real stack while it ingests, and check nothing is lost, invented or doubled.

Every drill runs against private services it starts itself (tests/integration/drills.py):
a redis-server on a free port, gunicorn and real Celery workers (prefork, as in production)
on the pytest-django test database, and for the PostgreSQL restart a throwaway cluster.
Each ends with: every report that got a 202 is ``done`` with no error, its counts are those
of a clean single run, and the findings (fingerprint, status) and the events per type equal
those of a clean single run of the same uploads.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
from django.db import connection, connections, transaction

from bench.reportgen import trivy_bytes
from dashboard.ingest.claim import report_process
from dashboard.ingest.receive import report_submit
from dashboard.ingest.scopes import lock_scopes, scope_key
from dashboard.models import ApiToken, Report, ReportStatus
from scanners.base import ImageRef
from tests.integration.conftest import DrillStack
from tests.integration.drills import (
    PostgresCluster,
    Upload,
    clean_run,
    database_state,
    finished,
    get_json,
    ingest_in_flight,
    lock_waiters,
    post_report,
    publish_duplicate,
    reference,
    report_rows,
    run_sweeper,
    sql_finished,
    sql_report_rows,
    sql_state,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("drills")]

#: Large enough that applying it takes a while (it is killed while its findings are being written).
LARGE = Upload(data=trivy_bytes(2000, image="registry.example.com/drills/big", tag="1.0"))
#: Publishing to a broker that is down must not hold a request longer than this (seconds); a post
#: with Redis up takes well under 0.1 s here, and kombu's default reconnect sleep alone is 2 s.
PUBLISH_BUDGET = 1.5
#: Generous: the machine running the suite is shared and busy.
DONE_TIMEOUT = 240


def small(name: str, n: int = 30, start: int = 0) -> Upload:
    return Upload(data=trivy_bytes(n, start=start, image=f"registry.example.com/drills/{name}", tag="1.0"))


def _wait_in_flight(timeout: float = 180) -> None:
    """Until a worker is in the middle of writing findings (its transaction open, not committed)."""
    with connection.cursor() as cursor:
        wait_for(lambda: ingest_in_flight(cursor), timeout=timeout, what="a worker writing findings", interval=0.02)


def _wait_done(ids: list[str], timeout: float = DONE_TIMEOUT) -> None:
    wait_for(lambda: finished(ids), timeout=timeout, what=f"{len(ids)} report(s) to finish", interval=0.25)


def test_pool_process_killed_mid_ingest_the_report_goes_back_to_the_queue(
    drill_stack: DrillStack, drill_token: tuple[ApiToken, str]
) -> None:
    """The OOM killer's usual victim: the pool process applying the report.  The worker rejects the
    message back to the queue (acks late + reject on worker lost) and a new pool process finishes it."""
    expected = reference(LARGE, token=drill_token[0])
    api, worker = drill_stack.up()

    posted = post_report(api.base_url, drill_stack.token, LARGE)
    _wait_in_flight()
    [pool_process] = worker.pool_children()
    os.kill(pool_process, signal.SIGKILL)
    _wait_done([posted.report_id])

    assert posted.status == 202
    assert report_rows([posted.report_id]) == {
        posted.report_id: {"status": ReportStatus.DONE, "error": "", "attempts": 2, "outcome": expected.outcomes[0]}
    }
    assert database_state() == expected.state
    assert "exited with 'signal 9 (SIGKILL)'" in worker.log()
    assert worker.alive()
    assert pool_process not in worker.pool_children()


def test_whole_worker_killed_mid_ingest_a_new_worker_finishes_it_after_the_sweeper(
    drill_stack: DrillStack, drill_token: tuple[ApiToken, str]
) -> None:
    """The whole worker (main process and pool) dies: nobody is left to reject the message, and Redis
    keeps it unacknowledged until its visibility timeout (1 hour).  The periodic sweeper re-enqueues the
    report first (VIGIL_STUCK_AFTER_SECONDS); when Redis finally hands the old message out again, it
    changes nothing."""
    expected = reference(LARGE, token=drill_token[0])
    api, first = drill_stack.up()

    posted = post_report(api.base_url, drill_stack.token, LARGE)
    _wait_in_flight()
    first.kill()
    second = drill_stack.worker()
    held_by_redis = (drill_stack.redis.queued(drill_stack.queue), drill_stack.redis.unacked())
    stuck = report_rows([posted.report_id])[posted.report_id]
    swept = run_sweeper(drill_stack.env)
    _wait_done([posted.report_id])
    after_sweep = report_rows([posted.report_id])
    state_after_sweep = database_state()
    drill_stack.redis.redeliver_unacked()
    wait_for(
        lambda: second.received() == 2 and drill_stack.redis.unacked() == 0 and drill_stack.redis.queued(drill_stack.queue) == 0,
        timeout=120,
        what="the new worker to take and acknowledge the dead worker's message",
    )

    assert posted.status == 202
    assert held_by_redis == (0, 1)
    assert (stuck["status"], stuck["attempts"]) == (ReportStatus.PROCESSING, 1)
    assert swept == {posted.report_id}
    assert after_sweep == {posted.report_id: {"status": ReportStatus.DONE, "error": "", "attempts": 2, "outcome": expected.outcomes[0]}}
    assert state_after_sweep == expected.state
    assert report_rows([posted.report_id]) == after_sweep
    assert database_state() == expected.state


def test_redis_down_while_twenty_reports_are_posted(drill_stack: DrillStack, drill_token: tuple[ApiToken, str]) -> None:
    """Publishing fails fast: every post answers 202 at once with the report stored; after Redis comes
    back (empty: no persistence) the sweeper re-enqueues them and the worker, which reconnected, does them."""
    uploads = [small(f"outage-{i}", start=7 * i) for i in range(21)]
    expected = clean_run(uploads, token=drill_token[0])
    api, worker = drill_stack.up(api_workers=1)  # one process, warmed by the first post: timings below are no start-up cost
    warm = post_report(api.base_url, drill_stack.token, uploads[0])  # the API and the worker hold live broker connections
    _wait_done([warm.report_id])

    drill_stack.redis.stop()
    posted = [post_report(api.base_url, drill_stack.token, upload, timeout=30) for upload in uploads[1:]]
    ids = [p.report_id for p in posted]
    while_down = report_rows(ids)
    drill_stack.redis.start()
    swept = run_sweeper(drill_stack.env)
    _wait_done(ids)

    assert [p.status for p in posted] == [202] * 20
    assert max(p.seconds for p in posted) < PUBLISH_BUDGET, [round(p.seconds, 2) for p in posted]
    assert [while_down[i]["status"] for i in ids] == [ReportStatus.QUEUED] * 20
    assert swept == set(ids)
    rows = report_rows([warm.report_id, *ids])
    assert [(rows[i]["status"], rows[i]["error"]) for i in [warm.report_id, *ids]] == [(ReportStatus.DONE, "")] * 21
    assert [rows[i]["outcome"] for i in [warm.report_id, *ids]] == list(expected.outcomes)
    assert database_state() == expected.state
    assert worker.alive()


def test_redis_flushed_while_reports_are_queued(drill_stack: DrillStack, drill_token: tuple[ApiToken, str]) -> None:
    """FLUSHALL while the worker is busy and ten reports wait in the queue: the queued messages are gone,
    the busy one still completes (its late ack finds nothing), and the sweeper recovers the ten.

    The worker is kept busy deterministically: the test holds the lifecycle-scope lock of the busy
    report (as a concurrent import of the same image would), so the worker waits inside its transaction."""
    busy_upload = small("busy", n=200)
    smalls = [small(f"flushed-{i}", start=11 * i) for i in range(10)]
    expected = clean_run([busy_upload, *smalls], token=drill_token[0])
    api, _ = drill_stack.up()

    with transaction.atomic(), connection.cursor() as cursor:
        lock_scopes(
            [scope_key(stream="scan", source="trivy", image=ImageRef.parse("registry.example.com/drills/busy"), resource=None, team=None)]
        )
        busy = post_report(api.base_url, drill_stack.token, busy_upload)
        wait_for(lambda: lock_waiters(cursor) == 1, timeout=120, what="the worker to wait for the scope lock")
        posted = [post_report(api.base_url, drill_stack.token, upload) for upload in smalls]
        in_redis = (drill_stack.redis.queued(drill_stack.queue), drill_stack.redis.unacked())
        drill_stack.redis.flushall()
        after_flush = (drill_stack.redis.queued(drill_stack.queue), drill_stack.redis.unacked())
    ids = [p.report_id for p in posted]
    _wait_done([busy.report_id])
    stranded = report_rows(ids)
    swept = run_sweeper(drill_stack.env)
    _wait_done(ids)

    assert [busy.status, *(p.status for p in posted)] == [202] * 11
    assert in_redis == (10, 1)
    assert after_flush == (0, 0)
    assert [stranded[i]["status"] for i in ids] == [ReportStatus.QUEUED] * 10
    assert swept == set(ids)
    rows = report_rows([busy.report_id, *ids])
    assert [(rows[i]["status"], rows[i]["error"]) for i in [busy.report_id, *ids]] == [(ReportStatus.DONE, "")] * 11
    assert [rows[i]["outcome"] for i in [busy.report_id, *ids]] == list(expected.outcomes)
    assert database_state() == expected.state


@pytest.mark.usefixtures("postgres_url")  # the reference run is made on the PostgreSQL test database
def test_postgresql_restarted_while_a_worker_is_ingesting(
    cluster_stack: DrillStack, postgres_cluster: PostgresCluster, drill_token: tuple[ApiToken, str]
) -> None:
    """A throwaway cluster is restarted (``pg_ctl restart -m fast``) while the worker's transaction is
    open: the transaction is rolled back, the task retries on the database error, and the API, whose
    pooled connection died with the restart, keeps answering (one gunicorn thread, so the request after
    the restart is served on that very connection)."""
    after_restart = small("after-restart")
    expected = reference(LARGE, token=drill_token[0]) + clean_run([after_restart], token=drill_token[0])
    api, worker = cluster_stack.up(api_workers=1, api_threads=1)

    posted = post_report(api.base_url, cluster_stack.token, LARGE)
    with closing(postgres_cluster.connect("vigil")) as db, db.cursor() as cursor:
        wait_for(lambda: ingest_in_flight(cursor), timeout=180, what="the worker writing findings", interval=0.02)
    postgres_cluster.restart()
    status_after_restart = get_json(posted.body["url"], cluster_stack.token)[0]
    second = post_report(api.base_url, cluster_stack.token, after_restart)
    ids = [posted.report_id, second.report_id]
    with closing(postgres_cluster.connect("vigil")) as db:
        wait_for(lambda: sql_finished(db, ids), timeout=DONE_TIMEOUT, what="both reports to finish", interval=0.25)
        rows = sql_report_rows(db, ids)
        state = sql_state(db)

    assert (posted.status, status_after_restart, second.status) == (202, 200, 202)
    assert rows == {
        posted.report_id: {"status": ReportStatus.DONE, "error": "", "attempts": 2, "outcome": expected.outcomes[0]},
        second.report_id: {"status": ReportStatus.DONE, "error": "", "attempts": 1, "outcome": expected.outcomes[1]},
    }
    assert state == expected.state
    assert "retry: Retry in" in worker.log()  # the task's autoretry on the database error
    assert "OperationalError" in worker.log()


def test_the_same_task_delivered_twice_to_two_workers_at_once(drill_stack: DrillStack, drill_token: tuple[ApiToken, str]) -> None:
    """Two workers get the same report at the same moment: both claim it (two attempts), one applies
    it, the other finds it done; the findings, counts and events are those of one run.

    Lined up deterministically: the two messages wait in Redis, the test holds the report row while
    both workers start and block on it, then lets go."""
    upload = small("twice", n=500)
    expected = clean_run([upload], token=drill_token[0])
    api = drill_stack.api()

    posted = post_report(api.base_url, drill_stack.token, upload)
    publish_duplicate(drill_stack.redis.url, drill_stack.queue, posted.report_id)
    queued = drill_stack.redis.queued(drill_stack.queue)
    with transaction.atomic(), connection.cursor() as cursor:
        Report.objects.select_for_update().get(pk=posted.report_id)
        workers = [drill_stack.worker(wait=False), drill_stack.worker(wait=False)]
        wait_for(lambda: lock_waiters(cursor) == 2, timeout=120, what="both workers to claim the report")
    _wait_done([posted.report_id])
    wait_for(
        lambda: drill_stack.redis.unacked() == 0 and drill_stack.redis.queued(drill_stack.queue) == 0,
        timeout=120,
        what="both deliveries to be acknowledged",
    )

    assert (posted.status, queued) == (202, 2)
    assert report_rows([posted.report_id]) == {
        posted.report_id: {"status": ReportStatus.DONE, "error": "", "attempts": 2, "outcome": expected.outcomes[0]}
    }
    assert database_state() == expected.state
    assert [worker.received() for worker in workers] == [1, 1]


@pytest.mark.usefixtures("postgres_url")
def test_the_same_report_processed_by_two_threads_at_once(drill_token: tuple[ApiToken, str]) -> None:
    """The same without a broker: two direct concurrent calls of report_process, lined up the same way."""
    upload = small("threads", n=500)
    expected = clean_run([upload], token=drill_token[0])
    report, _ = report_submit(data=upload.data, token=drill_token[0], enqueue_now=False)

    def deliver() -> None:
        try:
            report_process(report.pk)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        with transaction.atomic(), connection.cursor() as cursor:
            Report.objects.select_for_update().get(pk=report.pk)
            calls = [pool.submit(deliver), pool.submit(deliver)]
            wait_for(lambda: lock_waiters(cursor) == 2, timeout=60, what="both calls to claim the report")
        results = [call.result(timeout=DONE_TIMEOUT) for call in calls]  # re-raises what a call raised

    assert results == [None, None]
    assert report_rows([str(report.pk)]) == {
        str(report.pk): {"status": ReportStatus.DONE, "error": "", "attempts": 2, "outcome": expected.outcomes[0]}
    }
    assert database_state() == expected.state
